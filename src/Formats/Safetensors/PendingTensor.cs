using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Converter.Formats.Numerics;

namespace Converter.Formats.Safetensors;

/// <summary>
/// A tensor queued for writing: name, dtype, shape and a way to produce its bytes. Producing is deferred to
/// write time, so a writer can stream tensors copied from a source checkpoint or computed on demand without
/// holding a whole model in memory.
/// </summary>
public sealed class PendingTensor
{
    private readonly Action<Stream> _write;

    private PendingTensor(string name, DType dtype, long[] shape, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name == "__metadata__")
            throw new ArgumentException("'__metadata__' is reserved by the safetensors format", nameof(name));
        foreach (var d in shape)
        {
            if (d < 0)
                throw new ArgumentException($"tensor '{name}': negative dimension in shape ({string.Join(", ", shape)})", nameof(shape));
        }
        Name = name;
        DType = dtype;
        Shape = (long[])shape.Clone();
        ElementCount = Shape.Aggregate(1L, (a, b) => checked(a * b));
        ByteLength = checked(ElementCount * dtype.ElementSize());
        _write = write;
    }

    public string Name { get; }
    public DType DType { get; }
    public long[] Shape { get; }
    public long ElementCount { get; }
    public long ByteLength { get; }

    /// <summary>Raw little-endian bytes, referenced (not copied) until written.</summary>
    public static PendingTensor FromBytes(string name, DType dtype, long[] shape, ReadOnlyMemory<byte> data)
    {
        var tensor = new PendingTensor(name, dtype, shape, s => s.Write(data.Span));
        tensor.CheckLength(data.Length);
        return tensor;
    }

    /// <summary>Exact values of an unmanaged type whose size is the dtype's (short for I16, Half for F16, ...); the array is referenced, not copied.</summary>
    public static PendingTensor FromArray<T>(string name, DType dtype, long[] shape, T[] data) where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        if (size != dtype.ElementSize())
            throw new ArgumentException($"tensor '{name}': {typeof(T).Name} is {size} bytes, {dtype} elements are {dtype.ElementSize()}");
        var tensor = new PendingTensor(name, dtype, shape, s =>
        {
            // A window at a time: the bytes of an array past 2 GiB do not fit in one span.
            foreach (var (first, count) in ElementWindows.Over(data.Length, size))
                s.Write(MemoryMarshal.AsBytes(data.AsSpan((int)first, count)));
        });
        tensor.CheckLength((long)data.Length * size);
        return tensor;
    }

    /// <summary>
    /// Float32 values stored as F32, F16 or BF16 (both narrowings round to nearest even). The array is referenced, not
    /// copied, and converted a window at a time while it is written, so it must not change until then.
    /// </summary>
    public static PendingTensor FromFloat32(string name, long[] shape, float[] values, DType storeAs = DType.F32) =>
        FromFloat32(name, shape, [values], storeAs);

    /// <summary>
    /// Float32 values given as consecutive parts, e.g. a calibration state held one array per row because the whole
    /// passes what one array holds; stored and referenced as <see cref="FromFloat32(string, long[], float[], DType)"/>.
    /// </summary>
    public static PendingTensor FromFloat32(string name, long[] shape, IReadOnlyList<ReadOnlyMemory<float>> parts, DType storeAs = DType.F32)
    {
        if (storeAs is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ArgumentException($"tensor '{name}': float32 values can be stored as F32, F16 or BF16, not {storeAs}", nameof(storeAs));
        var tensor = new PendingTensor(name, storeAs, shape, s =>
        {
            byte[] window = storeAs == DType.F32 ? [] : new byte[ElementWindows.DefaultBytes];
            foreach (var part in parts)
            {
                foreach (var (first, count) in ElementWindows.Over(part.Length, storeAs.ElementSize()))
                    WriteNarrowed(s, part.Span.Slice((int)first, count), storeAs, window);
            }
        });
        tensor.CheckLength(parts.Sum(p => (long)p.Length) * storeAs.ElementSize());
        return tensor;
    }

    /// <summary>Writes float32 values as <paramref name="storeAs"/>, narrowing through <paramref name="window"/>.</summary>
    private static void WriteNarrowed(Stream stream, ReadOnlySpan<float> values, DType storeAs, byte[] window)
    {
        switch (storeAs)
        {
            case DType.F32:
                stream.Write(MemoryMarshal.AsBytes(values));
                return;
            case DType.F16:
                Float16.FromSingle(values, MemoryMarshal.Cast<byte, Half>(window.AsSpan()));
                break;
            default:
                BFloat16.FromSingle(values, MemoryMarshal.Cast<byte, ushort>(window.AsSpan()));
                break;
        }
        stream.Write(window.AsSpan(0, values.Length * 2));
    }

    /// <summary>
    /// Bytes written by <paramref name="write"/> at write time; the writer fails (leaving no file) unless exactly
    /// the shape's byte count is written.
    /// </summary>
    public static PendingTensor FromProducer(string name, DType dtype, long[] shape, Action<Stream> write) =>
        new(name, dtype, shape, write);

    /// <summary>
    /// A tensor copied unchanged from a reader at write time (the reader must stay open until then). Once written, the
    /// reader's mapped pages leave the resident set (<see cref="ITensorReader.ReleaseResidentPages"/>): a copy reads
    /// each page once, and compiling a whole llama-3-8b's 4.6 GiB output from its module files raised the process's
    /// peak RSS from 10.1 to 12.7 GiB on an H200 without it.
    /// </summary>
    public static PendingTensor CopyOf(ITensorReader reader, string name, string? newName = null)
    {
        var info = reader.Info(name);
        return new PendingTensor(newName ?? name, info.DType, info.Shape, s =>
        {
            reader.WriteRaw(name, s);
            reader.ReleaseResidentPages();
        });
    }

    internal void WriteTo(Stream stream) => _write(stream);

    private void CheckLength(long actual)
    {
        if (actual != ByteLength)
            throw new ArgumentException($"tensor '{Name}': shape ({string.Join(", ", Shape)}) of {DType} needs {ByteLength} bytes, data has {actual}");
    }

    public override string ToString() => $"{Name} {DType.SafetensorsName()} ({string.Join(", ", Shape)})";
}
