using System.Numerics.Tensors;

namespace Converter.Compute;

/// <summary>Row-wise normalization of every <c>weight.Length</c>-wide slice of x, for each <see cref="NormKind"/>.</summary>
public static class Normalization
{
    /// <summary>
    /// y = norm(x) slice by slice; <paramref name="y"/> may be <paramref name="x"/>. <paramref name="bias"/> is only
    /// allowed for <see cref="NormKind.Layer"/>.
    /// </summary>
    public static void Apply(NormKind kind, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> y)
    {
        if (kind == NormKind.Rms && bias.IsEmpty)
        {
            RmsNorm.Apply(x, weight, eps, y);
            return;
        }
        int width = weight.Length;
        if (width == 0 || x.Length % width != 0 || y.Length != x.Length)
            throw new ArgumentException($"{kind} norm of {x.Length} values into {y.Length} with a {width}-wide weight");
        if (!bias.IsEmpty && (kind != NormKind.Layer || bias.Length != width))
            throw new ArgumentException($"a {kind} norm takes no bias of {bias.Length} values here");
        for (int start = 0; start < x.Length; start += width)
        {
            var row = x.Slice(start, width);
            var dest = y.Slice(start, width);
            switch (kind)
            {
                case NormKind.RmsUnitOffset:
                    {
                        float inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(row) / width + eps);
                        for (int i = 0; i < width; i++)
                            dest[i] = row[i] * inv * (1f + weight[i]);
                        break;
                    }
                case NormKind.Layer:
                    {
                        float mean = TensorPrimitives.Sum(row) / width;
                        float variance = 0;
                        for (int i = 0; i < width; i++)
                        {
                            float d = row[i] - mean;
                            variance += d * d;
                        }
                        float inv = 1f / MathF.Sqrt(variance / width + eps);
                        for (int i = 0; i < width; i++)
                            dest[i] = (row[i] - mean) * inv * weight[i] + (bias.IsEmpty ? 0f : bias[i]);
                        break;
                    }
                default:
                    throw new ArgumentOutOfRangeException(nameof(kind), kind, "a biased RMS norm is not defined");
            }
        }
    }
}
