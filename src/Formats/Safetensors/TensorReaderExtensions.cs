using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Converter.Formats.Safetensors;

/// <summary>
/// Typed reads of one tensor at a time, shared by every <see cref="ITensorReader"/>. All of them go through the map a
/// window at a time (<see cref="ElementWindows"/>), so a tensor past 2 GiB reads like any other.
/// </summary>
public static class TensorReaderExtensions
{
    /// <summary>The whole tensor's bytes as one span; tensors over 2 GiB cannot be returned so and throw.</summary>
    public static ReadOnlySpan<byte> RawBytes(this ITensorReader reader, string name)
    {
        var info = reader.Info(name);
        if (info.ByteLength > int.MaxValue)
            throw new SafetensorsFormatException(reader.FileOf(name), name, $"{info.ByteLength} bytes exceed what one span can address (read it in windows)");
        return reader.RawBytes(name, 0, (int)info.ByteLength);
    }

    /// <summary>
    /// Tensors of at least this many elements (4 MiB of float32) are read into the pinned-object heap, which the GC
    /// never compacts: a module's weights live while it converts, and a compacting collection that moves gigabytes of
    /// them stops every thread for seconds (2.2 s in a 70B layer, session 28); dead ones leave room that the next
    /// module's weights of the same shapes take again.
    /// </summary>
    public const int PinnedFromElements = 1 << 20;

    /// <summary>The tensor converted to float32 from whatever dtype it is stored in.</summary>
    public static float[] ReadFloat32(this ITensorReader reader, string name)
    {
        var info = reader.Info(name);
        int length = CheckedArrayLength(reader, info);
        var result = GC.AllocateUninitializedArray<float>(length, pinned: length >= PinnedFromElements);
        reader.ReadFloat32(name, 0, result);
        return result;
    }

    /// <summary>Converts the tensor to float32 into <paramref name="dest"/>, which must hold exactly its elements.</summary>
    public static void ReadFloat32(this ITensorReader reader, string name, Span<float> dest)
    {
        var info = reader.Info(name);
        if (dest.Length != info.ElementCount)
            throw new ArgumentException($"tensor '{name}' has {info.ElementCount} elements, destination {dest.Length}", nameof(dest));
        reader.ReadFloat32(name, 0, dest);
    }

    /// <summary>
    /// Elements [<paramref name="first"/>, first + dest.Length) of the tensor (flat, row-major) converted to float32:
    /// a part of a tensor too large for one array, such as one calibration row of a checkpoint's hidden states.
    /// </summary>
    public static void ReadFloat32(this ITensorReader reader, string name, long first, Span<float> dest)
    {
        var info = reader.Info(name);
        if (first < 0 || first > info.ElementCount - dest.Length)
            throw new ArgumentOutOfRangeException(nameof(first), $"elements [{first}, {first + dest.Length}) are outside tensor '{name}' of {info.ElementCount}");
        int size = info.DType.ElementSize();
        foreach (var (start, count) in ElementWindows.Over(dest.Length, size))
            TensorDecoding.ToFloat32(info.DType, reader.RawBytes(name, (first + start) * size, count * size), dest.Slice((int)start, count));
    }

    /// <summary>
    /// The tensor's exact stored values, e.g. <c>short</c> for I16, <see cref="Half"/> for F16, <c>ushort</c> bits for
    /// BF16. <typeparamref name="T"/> must have the dtype's element size; a mismatch means the file does not hold
    /// what the caller expects, so it is reported as a format error naming the file.
    /// </summary>
    public static T[] ReadRaw<T>(this ITensorReader reader, string name) where T : unmanaged
    {
        var info = reader.Info(name);
        CheckElementSize<T>(reader, info);
        var result = GC.AllocateUninitializedArray<T>(CheckedArrayLength(reader, info));
        int size = Unsafe.SizeOf<T>();
        foreach (var (start, count) in ElementWindows.Over(result.Length, size))
            reader.RawBytes(name, start * size, count * size).CopyTo(MemoryMarshal.AsBytes(result.AsSpan((int)start, count)));
        return result;
    }

    /// <summary>Copies the tensor's bytes unchanged to <paramref name="stream"/>, a window at a time.</summary>
    public static void WriteRaw(this ITensorReader reader, string name, Stream stream)
    {
        var info = reader.Info(name);
        foreach (var (start, count) in ElementWindows.Over(info.ByteLength, 1))
            stream.Write(reader.RawBytes(name, start, count));
    }

    private static void CheckElementSize<T>(ITensorReader reader, TensorInfo info) where T : unmanaged
    {
        if (Unsafe.SizeOf<T>() != info.DType.ElementSize())
        {
            throw new SafetensorsFormatException(reader.FileOf(info.Name), info.Name,
                $"dtype {info.DType.SafetensorsName()} has {info.DType.ElementSize()}-byte elements, cannot be read as {typeof(T).Name} ({Unsafe.SizeOf<T>()} bytes)");
        }
    }

    private static int CheckedArrayLength(ITensorReader reader, TensorInfo info)
    {
        if (info.ElementCount > Array.MaxLength)
            throw new SafetensorsFormatException(reader.FileOf(info.Name), info.Name, $"{info.ElementCount} elements do not fit in one array");
        return (int)info.ElementCount;
    }
}
