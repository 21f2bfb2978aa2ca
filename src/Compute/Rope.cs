namespace Converter.Compute;

/// <summary>How the rotated dimensions of a head pair up.</summary>
public enum RotaryPairing
{
    /// <summary>HF's rotate_half: dimension i pairs with i + rotated/2 (Llama, Gemma, Phi-3, ...).</summary>
    Halves,

    /// <summary>Neighbours: dimension 2i pairs with 2i + 1, both at frequency i (GLM-4, Cohere).</summary>
    Interleaved,
}

/// <summary>Rotary position embedding of the first 2·table.Half dimensions of every head (all of them unless partial).</summary>
public static class Rope
{
    /// <summary>
    /// Rotates every head of every token in place: x is (tokens, heads·headDim), token t at position t; each pair
    /// (a, b) of frequency i becomes (a·cos − b·sin, b·cos + a·sin). Dimensions past 2·table.Half pass unchanged
    /// (partial rotary).
    /// </summary>
    public static void Apply(Span<float> x, int tokens, int heads, int headDim, RotaryTable table, RotaryPairing pairing = RotaryPairing.Halves)
    {
        int half = table.Half;
        if (headDim % 2 != 0 || 2 * half > headDim)
            throw new ArgumentException($"head dimension {headDim} does not fit a rotary table of {table.Half} frequencies");
        if (x.Length != (long)tokens * heads * headDim)
            throw new ArgumentException($"{x.Length} values are not ({tokens}, {heads}·{headDim})");
        if (tokens > table.Positions)
            throw new ArgumentException($"{tokens} tokens exceed the rotary table's {table.Positions} positions");
        // Interleaved pairs (2i, 2i+1); halves pair (i, i + half).
        int step = pairing == RotaryPairing.Interleaved ? 2 : 1, partner = pairing == RotaryPairing.Interleaved ? 1 : half;
        for (int t = 0; t < tokens; t++)
        {
            var cos = table.Cos(t);
            var sin = table.Sin(t);
            for (int h = 0; h < heads; h++)
            {
                var head = x.Slice((t * heads + h) * headDim, headDim);
                for (int i = 0; i < half; i++)
                {
                    int j = i * step;
                    float a = head[j], b = head[j + partner];
                    head[j] = a * cos[i] - b * sin[i];
                    head[j + partner] = b * cos[i] + a * sin[i];
                }
            }
        }
    }
}
