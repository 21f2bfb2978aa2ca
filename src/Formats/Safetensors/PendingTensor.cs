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
        if (Unsafe.SizeOf<T>() != dtype.ElementSize())
            throw new ArgumentException($"tensor '{name}': {typeof(T).Name} is {Unsafe.SizeOf<T>()} bytes, {dtype} elements are {dtype.ElementSize()}");
        var tensor = new PendingTensor(name, dtype, shape, s => s.Write(MemoryMarshal.AsBytes(data.AsSpan())));
        tensor.CheckLength((long)data.Length * Unsafe.SizeOf<T>());
        return tensor;
    }

    /// <summary>Float32 values stored as F32, F16 or BF16 (both narrowings round to nearest even); converted now.</summary>
    public static PendingTensor FromFloat32(string name, long[] shape, ReadOnlySpan<float> values, DType storeAs = DType.F32)
    {
        byte[] bytes;
        switch (storeAs)
        {
            case DType.F32:
                bytes = MemoryMarshal.AsBytes(values).ToArray();
                break;
            case DType.F16:
                var halves = new Half[values.Length];
                Float16.FromSingle(values, halves);
                bytes = MemoryMarshal.AsBytes(halves.AsSpan()).ToArray();
                break;
            case DType.BF16:
                var bf16 = new ushort[values.Length];
                BFloat16.FromSingle(values, bf16);
                bytes = MemoryMarshal.AsBytes(bf16.AsSpan()).ToArray();
                break;
            default:
                throw new ArgumentException($"tensor '{name}': float32 values can be stored as F32, F16 or BF16, not {storeAs}", nameof(storeAs));
        }
        return FromBytes(name, storeAs, shape, bytes);
    }

    /// <summary>
    /// Bytes written by <paramref name="write"/> at write time; the writer fails (leaving no file) unless exactly
    /// the shape's byte count is written.
    /// </summary>
    public static PendingTensor FromProducer(string name, DType dtype, long[] shape, Action<Stream> write) =>
        new(name, dtype, shape, write);

    /// <summary>A tensor copied unchanged from a reader at write time (the reader must stay open until then).</summary>
    public static PendingTensor CopyOf(ITensorReader reader, string name, string? newName = null)
    {
        var info = reader.Info(name);
        return new PendingTensor(newName ?? name, info.DType, info.Shape, s => s.Write(reader.RawBytes(name)));
    }

    internal void WriteTo(Stream stream) => _write(stream);

    private void CheckLength(long actual)
    {
        if (actual != ByteLength)
            throw new ArgumentException($"tensor '{Name}': shape ({string.Join(", ", Shape)}) of {DType} needs {ByteLength} bytes, data has {actual}");
    }

    public override string ToString() => $"{Name} {DType.SafetensorsName()} ({string.Join(", ", Shape)})";
}
