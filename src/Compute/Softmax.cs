using System.Numerics.Tensors;

namespace Converter.Compute;

/// <summary>Numerically stable softmax (TensorPrimitives.SoftMax does not subtract the maximum, so large logits overflow).</summary>
public static class Softmax
{
    /// <summary>x ← exp(x − max x) / Σ exp(x − max x), in place; an empty span is left alone.</summary>
    public static void InPlace(Span<float> x)
    {
        if (x.IsEmpty)
            return;
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, x);
        TensorPrimitives.Exp(x, x);
        float sum = TensorPrimitives.Sum(x);
        TensorPrimitives.Multiply(x, 1f / sum, x);
    }
}
