namespace Converter.Formats.Numerics;

/// <summary>
/// float8_e4m3fn (OCP FP8 E4M3, torch.float8_e4m3fn): 1 sign bit, 4 exponent bits of bias 7, 3 mantissa bits; no
/// infinities, exponent 0 is subnormal (m/8 · 2^−6), and S.1111.111 (0x7F, 0xFF) is NaN, so the largest finite
/// magnitude is 448 (0x7E). Every value converts to float32 exactly.
/// </summary>
public static class Float8E4M3
{
    private static readonly float[] Table = BuildTable();

    public static float ToSingle(byte bits) => Table[bits];

    public static void ToSingle(ReadOnlySpan<byte> source, Span<float> dest)
    {
        if (dest.Length != source.Length)
            throw new ArgumentException($"{source.Length} fp8 values do not fill {dest.Length} floats", nameof(dest));
        for (int i = 0; i < source.Length; i++)
            dest[i] = Table[source[i]];
    }

    private static float[] BuildTable()
    {
        var table = new float[256];
        for (int b = 0; b < 256; b++)
        {
            int exponent = (b >> 3) & 0xF, mantissa = b & 0x7;
            float magnitude = exponent == 0xF && mantissa == 0x7 ? float.NaN
                : exponent == 0 ? mantissa / 8f * MathF.ScaleB(1f, -6)
                : (1 + mantissa / 8f) * MathF.ScaleB(1f, exponent - 7);
            table[b] = (b & 0x80) != 0 ? -magnitude : magnitude;
        }
        return table;
    }
}
