using Converter.Formats.Numerics;

namespace Converter.Formats.Safetensors;

/// <summary>
/// Dequantizes a block-scaled FP8 weight (quantization_config {quant_method: "fp8", weight_block_size: [br, bc]}, as in
/// DeepSeek-V3 and Qwen3-FP8): the (rows, cols) float8_e4m3fn matrix is split into br×bc blocks, the last row and
/// column of blocks partial when the sides are not multiples, and <c>weight_scale_inv</c> holds one float32 per block,
/// (⌈rows/br⌉, ⌈cols/bc⌉); the real weight is fp8 value × its block's scale_inv (computed in float32, as
/// transformers' and exllamav3's dequantizers do).
/// </summary>
public static class BlockScaledFp8
{
    /// <summary>Writes the (rows, cols) weight to <paramref name="dest"/> from its fp8 bytes and per-block scales.</summary>
    public static void Dequantize(ReadOnlySpan<byte> fp8, int rows, int cols, ReadOnlySpan<float> scaleInv, int blockRows, int blockCols, Span<float> dest)
    {
        if (rows < 0 || cols < 0 || blockRows <= 0 || blockCols <= 0)
            throw new ArgumentException($"({rows}, {cols}) in blocks of {blockRows}×{blockCols} is not a valid layout");
        int scaleCols = BlockCount(cols, blockCols);
        if (fp8.Length != (long)rows * cols || dest.Length != fp8.Length)
            throw new ArgumentException($"{fp8.Length} fp8 values / {dest.Length} outputs are not ({rows}, {cols})");
        if (scaleInv.Length != (long)BlockCount(rows, blockRows) * scaleCols)
            throw new ArgumentException($"{scaleInv.Length} block scales are not ({BlockCount(rows, blockRows)}, {scaleCols}) for ({rows}, {cols}) in {blockRows}×{blockCols} blocks");
        for (int r = 0; r < rows; r++)
        {
            var scales = scaleInv.Slice(r / blockRows * scaleCols, scaleCols);
            var source = fp8.Slice(r * cols, cols);
            var target = dest.Slice(r * cols, cols);
            for (int c = 0; c < cols; c++)
                target[c] = Float8E4M3.ToSingle(source[c]) * scales[c / blockCols];
        }
    }

    /// <summary>Blocks along a side of <paramref name="length"/>: ⌈length / block⌉.</summary>
    public static int BlockCount(int length, int block) => (length + block - 1) / block;
}
