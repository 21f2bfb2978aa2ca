using Converter.Trellis.Tiles;

namespace Converter.Trellis.Viterbi;

/// <summary>
/// The plain scalar encoder: the reference the SIMD and GPU encoders are tested against. Costs are float32, ties go
/// to the smallest j as in exllamav3's kernel (§2.4).
/// </summary>
public static class ReferenceViterbiEncoder
{
    /// <summary>Encodes one tile given in trellis-position order; writes 256 tail-biting states.</summary>
    public static void EncodeTile(ReadOnlySpan<float> table, ReadOnlySpan<float> target, Span<ushort> states, ViterbiWorkspace ws)
    {
        if (target.Length != TileLayout.Length || states.Length != TileLayout.Length)
            throw new ArgumentException("a tile has 256 positions");
        ViterbiTailBiting.Encode(table, target, states, ws, Step);
    }

    internal static void Step(ReadOnlySpan<float> table, float target, ReadOnlySpan<float> previous, Span<float> current, Span<byte> backPointers, int bits)
    {
        var g = new TrellisGraph(bits);
        for (int o = 0; o < g.Nodes; o++)
        {
            float best = float.PositiveInfinity;
            int bestJ = 0;
            for (int j = 0; j < g.Fanin; j++)
            {
                int s = g.State(j, o);
                float e = table[s] - target;
                float c = previous[g.FromNode(s)] + e * e;
                if (c < best)
                {
                    best = c;
                    bestJ = j;
                }
            }
            current[o] = best;
            backPointers[o] = (byte)bestJ;
        }
    }
}
