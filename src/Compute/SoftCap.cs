namespace Converter.Compute;

/// <summary>Gemma 2's soft-capping of attention and final logits: x ← cap · tanh(x / cap), which bounds |x| by cap.</summary>
public static class SoftCap
{
    public static void InPlace(Span<float> x, float cap)
    {
        if (!(cap > 0))
            throw new ArgumentOutOfRangeException(nameof(cap), cap, "the soft cap must be positive");
        // Divided, not multiplied by 1/cap: transformers divides, and the two round differently.
        for (int i = 0; i < x.Length; i++)
            x[i] = MathF.Tanh(x[i] / cap) * cap;
    }
}
