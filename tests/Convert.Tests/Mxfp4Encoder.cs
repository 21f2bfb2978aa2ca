namespace Converter.Convert.Tests;

/// <summary>
/// A test-side MXFP4 encoder (the OCP MX rule), to make a published-gpt-oss-style checkpoint from a bf16 one: a
/// block's scale is 2^(⌊log₂ max|v|⌋ − 2) (E2M1's largest exponent is 2), each value the nearest E2M1 magnitude of
/// v/scale (saturating at 6), two codes per byte, the even value in the low nibble.
/// </summary>
internal static class Mxfp4Encoder
{
    /// <summary>E2M1 magnitudes by their three low code bits (exponent, mantissa).</summary>
    private static readonly float[] Magnitudes = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f];

    /// <summary>Encodes 32 values into 16 bytes; writes the values they decode to and returns the E8M0 scale byte.</summary>
    public static byte EncodeBlock(ReadOnlySpan<float> block, Span<byte> packed, Span<float> decoded)
    {
        float max = 0f;
        foreach (var v in block)
            max = MathF.Max(max, MathF.Abs(v));
        int exponent = max == 0f ? 0 : MathF.ILogB(max) - 2;
        packed.Clear();
        for (int j = 0; j < 32; j++)
        {
            float scaled = MathF.Abs(block[j]) / MathF.ScaleB(1f, exponent);
            int best = 0;
            for (int m = 1; m < Magnitudes.Length; m++)
            {
                if (MathF.Abs(Magnitudes[m] - scaled) < MathF.Abs(Magnitudes[best] - scaled))
                    best = m;
            }
            bool negative = block[j] < 0;
            int code = (negative ? 8 : 0) | best;
            packed[j / 2] |= (byte)(j % 2 == 0 ? code : code << 4);
            decoded[j] = (negative ? -1 : 1) * MathF.ScaleB(Magnitudes[best], exponent);
        }
        return (byte)(exponent + 127);
    }
}
