using System.Numerics;

namespace Converter.Formats.Numerics;

/// <summary>
/// bfloat16 as raw ushort bits: the top 16 bits of an IEEE float32 (same exponent range, 8-bit mantissa).
/// .NET has no BFloat16 type in the BCL, so the conversions live here.
/// </summary>
public static class BFloat16
{
    /// <summary>Exact widening: bf16 bits become the high half of the float32.</summary>
    public static float ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>
    /// Narrowing with round-to-nearest-even, as PyTorch's <c>tensor.to(torch.bfloat16)</c> does; overflow
    /// rounds to ±Inf, and a NaN stays a (quiet) NaN instead of being rounded into an Inf.
    /// </summary>
    public static ushort FromSingle(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
            return (ushort)((bits >> 16) | 0x0040);
        var lsb = (bits >> 16) & 1;
        return (ushort)((bits + 0x7FFFu + lsb) >> 16);
    }

    /// <summary>Widens a span of bf16 bits to float32; <paramref name="dest"/> must be at least as long.</summary>
    public static void ToSingle(ReadOnlySpan<ushort> source, Span<float> dest)
    {
        if (dest.Length < source.Length)
            throw new ArgumentException($"destination holds {dest.Length} values, source {source.Length}", nameof(dest));
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var step = Vector<ushort>.Count;
            var half = Vector<uint>.Count;
            for (; i <= source.Length - step; i += step)
            {
                Vector.Widen(new Vector<ushort>(source[i..]), out var lo, out var hi);
                Vector.AsVectorSingle(lo << 16).CopyTo(dest[i..]);
                Vector.AsVectorSingle(hi << 16).CopyTo(dest[(i + half)..]);
            }
        }
        for (; i < source.Length; i++)
            dest[i] = ToSingle(source[i]);
    }

    /// <summary>Narrows float32 values to bf16 bits with round-to-nearest-even.</summary>
    public static void FromSingle(ReadOnlySpan<float> source, Span<ushort> dest)
    {
        if (dest.Length < source.Length)
            throw new ArgumentException($"destination holds {dest.Length} values, source {source.Length}", nameof(dest));
        for (var i = 0; i < source.Length; i++)
            dest[i] = FromSingle(source[i]);
    }
}
