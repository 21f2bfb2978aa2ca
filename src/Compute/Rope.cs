namespace Converter.Compute;

/// <summary>Rotary position embedding in the HF "rotate_half" form (first half of each head paired with the second).</summary>
public static class Rope
{
    /// <summary>
    /// Rotates every head of every token in place: x is (tokens, heads·headDim), token t at position t, and for
    /// i &lt; headDim/2: (a, b) = (x[i], x[i + headDim/2]) ← (a·cos − b·sin, b·cos + a·sin).
    /// </summary>
    public static void Apply(Span<float> x, int tokens, int heads, int headDim, RotaryTable table)
    {
        int half = headDim / 2;
        if (headDim % 2 != 0 || half != table.Half)
            throw new ArgumentException($"head dimension {headDim} does not match a rotary table of {table.Half} frequencies");
        if (x.Length != (long)tokens * heads * headDim)
            throw new ArgumentException($"{x.Length} values are not ({tokens}, {heads}·{headDim})");
        if (tokens > table.Positions)
            throw new ArgumentException($"{tokens} tokens exceed the rotary table's {table.Positions} positions");
        for (int t = 0; t < tokens; t++)
        {
            var cos = table.Cos(t);
            var sin = table.Sin(t);
            for (int h = 0; h < heads; h++)
            {
                var head = x.Slice((t * heads + h) * headDim, headDim);
                for (int i = 0; i < half; i++)
                {
                    float a = head[i], b = head[i + half];
                    head[i] = a * cos[i] - b * sin[i];
                    head[i + half] = b * cos[i] + a * sin[i];
                }
            }
        }
    }
}
