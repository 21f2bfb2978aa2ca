using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Converter.Formats.Safetensors;

/// <summary>Typed reads of one tensor at a time, shared by every <see cref="ITensorReader"/>.</summary>
public static class TensorReaderExtensions
{
    /// <summary>The tensor converted to float32 from whatever dtype it is stored in.</summary>
    public static float[] ReadFloat32(this ITensorReader reader, string name)
    {
        var info = reader.Info(name);
        var result = new float[CheckedArrayLength(reader, info)];
        reader.ReadFloat32(name, result);
        return result;
    }

    /// <summary>Converts the tensor to float32 into <paramref name="dest"/>, which must hold exactly its elements.</summary>
    public static void ReadFloat32(this ITensorReader reader, string name, Span<float> dest)
    {
        var info = reader.Info(name);
        if (dest.Length != info.ElementCount)
            throw new ArgumentException($"tensor '{name}' has {info.ElementCount} elements, destination {dest.Length}", nameof(dest));
        TensorDecoding.ToFloat32(info.DType, reader.RawBytes(name), dest);
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
        var result = new T[CheckedArrayLength(reader, info)];
        reader.RawBytes(name).CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
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
