namespace Converter.Formats.Numerics;

/// <summary>
/// MXFP4 (OCP Microscaling, as gpt-oss checkpoints store their experts in <c>*_blocks</c> + <c>*_scales</c>): blocks of
/// 32 FP4 E2M1 values sharing one E8M0 scale 2^(s − 127). A block is 16 bytes, two values per byte, the low nibble
/// first (transformers' convert_moe_packed_tensors: <c>out[:, 0::2] = lut[blk &amp; 0x0F]; out[:, 1::2] = lut[blk &gt;&gt; 4]</c>).
/// The values are exact in float32.
/// </summary>
public static class Mxfp4
{
    /// <summary>Values per block, and so per scale byte.</summary>
    public const int BlockValues = 32;

    /// <summary>Bytes of one block (two values per byte).</summary>
    public const int BlockBytes = BlockValues / 2;

    /// <summary>The E8M0 scale byte of 2⁰.</summary>
    public const int ScaleBias = 127;

    /// <summary>FP4 E2M1 by code: sign bit 3, two exponent bits, one mantissa bit (transformers' FP4_VALUES).</summary>
    private static readonly float[] E2M1 = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f];

    /// <summary>The value of FP4 E2M1 code <paramref name="code"/> (0..15).</summary>
    public static float Fp4Value(int code) => E2M1[code & 0xF];

    /// <summary>
    /// Decodes whole blocks: <paramref name="dest"/> gets <c>32·scales.Length</c> values, block b from bytes
    /// [16b, 16b + 16) of <paramref name="blocks"/> times 2^(scales[b] − 127). A scale byte of 255 (E8M0's NaN)
    /// decodes the block's nonzero values to ±Inf, which a loader's finiteness check then reports.
    /// </summary>
    public static void Decode(ReadOnlySpan<byte> blocks, ReadOnlySpan<byte> scales, Span<float> dest)
    {
        if (blocks.Length != scales.Length * BlockBytes || dest.Length != scales.Length * BlockValues)
            throw new ArgumentException($"MXFP4: {blocks.Length} block bytes and {scales.Length} scales into {dest.Length} values (expected {BlockBytes} bytes and {BlockValues} values per scale)");
        for (int b = 0; b < scales.Length; b++)
        {
            var block = blocks.Slice(b * BlockBytes, BlockBytes);
            var values = dest.Slice(b * BlockValues, BlockValues);
            int exponent = scales[b] - ScaleBias;
            for (int i = 0; i < BlockBytes; i++)
            {
                values[2 * i] = MathF.ScaleB(E2M1[block[i] & 0xF], exponent);
                values[2 * i + 1] = MathF.ScaleB(E2M1[block[i] >> 4], exponent);
            }
        }
    }
}
