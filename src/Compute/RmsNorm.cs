using System.Numerics.Tensors;

namespace Converter.Compute;

/// <summary>Root-mean-square layer norm as in HF LlamaRMSNorm (float32 throughout).</summary>
public static class RmsNorm
{
    /// <summary>
    /// For every row r of width <c>weight.Length</c>: y[r] = x[r] / √(mean(x[r]²) + eps) ⊙ weight.
    /// <paramref name="y"/> may be <paramref name="x"/> itself.
    /// </summary>
    public static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        int width = weight.Length;
        if (width == 0 || x.Length % width != 0 || y.Length != x.Length)
            throw new ArgumentException($"RMSNorm of {x.Length} values into {y.Length} with a {width}-wide weight");
        for (int start = 0; start < x.Length; start += width)
        {
            var row = x.Slice(start, width);
            var dest = y.Slice(start, width);
            float meanSquare = TensorPrimitives.SumOfSquares(row) / width;
            float inv = 1f / MathF.Sqrt(meanSquare + eps);
            TensorPrimitives.Multiply(row, inv, dest);
            TensorPrimitives.Multiply(dest, weight, dest);
        }
    }
}
