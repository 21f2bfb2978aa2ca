using System.Runtime.InteropServices;
using Converter.Formats.Numerics;

namespace Converter.Formats.Safetensors;

/// <summary>
/// Converts a tensor's raw little-endian bytes of any supported dtype to float32. Integers convert as by a C#
/// cast (I32/I64 beyond 2^24 lose precision); BOOL gives 0 or 1. Source bytes may be unaligned: safetensors
/// does not promise alignment, and x64/arm64 loads tolerate it.
/// </summary>
public static class TensorDecoding
{
    public static void ToFloat32(DType dtype, ReadOnlySpan<byte> source, Span<float> dest)
    {
        var count = source.Length / dtype.ElementSize();
        if (source.Length % dtype.ElementSize() != 0 || dest.Length != count)
            throw new ArgumentException($"{source.Length} bytes of {dtype} do not fill {dest.Length} floats");

        switch (dtype)
        {
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(source).CopyTo(dest);
                break;
            case DType.F16:
                Float16.ToSingle(MemoryMarshal.Cast<byte, Half>(source), dest);
                break;
            case DType.BF16:
                BFloat16.ToSingle(MemoryMarshal.Cast<byte, ushort>(source), dest);
                break;
            case DType.I8:
                Widen(MemoryMarshal.Cast<byte, sbyte>(source), dest);
                break;
            case DType.I16:
                Widen(MemoryMarshal.Cast<byte, short>(source), dest);
                break;
            case DType.I32:
                Widen(MemoryMarshal.Cast<byte, int>(source), dest);
                break;
            case DType.I64:
                Widen(MemoryMarshal.Cast<byte, long>(source), dest);
                break;
            case DType.U8:
                Widen(source, dest);
                break;
            case DType.F8_E4M3:
                Float8E4M3.ToSingle(source, dest);
                break;
            case DType.BOOL:
                for (var i = 0; i < source.Length; i++)
                    dest[i] = source[i] != 0 ? 1f : 0f;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "no float32 conversion");
        }
    }

    private static void Widen<T>(ReadOnlySpan<T> source, Span<float> dest) where T : unmanaged, System.Numerics.INumberBase<T>
    {
        for (var i = 0; i < source.Length; i++)
            dest[i] = float.CreateTruncating(source[i]);
    }
}
