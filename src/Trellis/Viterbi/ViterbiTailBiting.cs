
namespace Converter.Trellis.Viterbi;

/// <summary>
/// The tail-biting two-pass procedure of docs/exl3-format.md §2.4, written once over a DP step that the scalar and SIMD
/// encoders supply. Pass 1 runs free from position 128 round to 127 and backtracks to find the boundary node N*;
/// pass 2 forces the path to start from N* and backtracks from N* at position 255, closing the cycle. The length
/// is a parameter only so tests can compare short trellises against exhaustive search.
/// </summary>
internal static class ViterbiTailBiting
{
    /// <summary>One DP step: from the previous costs, for every to-node, the best cost and winning j.</summary>
    internal delegate void Step(ReadOnlySpan<float> table, float target, ReadOnlySpan<float> previous, Span<float> current, Span<byte> backPointers, int bits);

    /// <summary>Encodes one tail-biting sequence of <c>target.Length</c> positions (256 for a tile; shorter in tests).</summary>
    public static void Encode(ReadOnlySpan<float> table, ReadOnlySpan<float> target, Span<ushort> states, ViterbiWorkspace ws, Step step)
    {
        int boundary = FindBoundary(table, target, ws, step);
        EncodeFromBoundary(table, target, states, ws, step, boundary);
    }

    /// <summary>Pass 1: positions T/2..T−1, 0..T/2−1 with a zero prior, then backtrack from the cheapest node to position 0.</summary>
    internal static int FindBoundary(ReadOnlySpan<float> table, ReadOnlySpan<float> target, ViterbiWorkspace ws, Step step)
    {
        var g = ws.Graph;
        int nodes = g.Nodes, length = target.Length, half = length / 2;
        // exllamav3 runs pass 1 over the whole cycle from T/2. Shorter spans were measured (codebooks, 256 tiles):
        // 64 positions each side costs +0.5% MSE, 32 costs +1.4%, so the full span stays.
        int warm = half, tail = half;
        ReadOnlySpan<float> prior = ws.Zero;
        for (int i = 0; i < warm + tail; i++)
        {
            int t = (length - warm + i) % length;
            // Back-pointers are followed only for positions tail−1..0; the others go to one scratch row that stays in cache.
            var bp = t < tail ? ws.BackPointers.AsSpan(t * nodes, nodes) : ws.ScratchRow;
            step(table, target[t], prior, ws.Current, bp, g.Bits);
            ws.Swap();
            prior = ws.Previous;
        }
        int node = ArgMin(ws.Previous.AsSpan(0, nodes));
        for (int t = tail - 1; t >= 0; t--)
            node = g.FromNode(g.State(ws.BackPointers[t * nodes + node], node));
        return node;
    }

    /// <summary>Pass 2: only <paramref name="boundary"/> may precede position 0, and the path must end in it.</summary>
    internal static void EncodeFromBoundary(ReadOnlySpan<float> table, ReadOnlySpan<float> target, Span<ushort> states, ViterbiWorkspace ws, Step step, int boundary)
    {
        var g = ws.Graph;
        int nodes = g.Nodes, length = target.Length;
        ws.Previous.AsSpan().Fill(float.PositiveInfinity);
        ws.Previous[boundary] = 0f;
        for (int t = 0; t < length; t++)
        {
            step(table, target[t], ws.Previous, ws.Current, ws.BackPointers.AsSpan(t * nodes, nodes), g.Bits);
            ws.Swap();
        }
        int node = boundary;
        for (int t = length - 1; t >= 0; t--)
        {
            int s = g.State(ws.BackPointers[t * nodes + node], node);
            states[t] = (ushort)s;
            node = g.FromNode(s);
        }
    }

    private static int ArgMin(ReadOnlySpan<float> costs)
    {
        int best = 0;
        for (int i = 1; i < costs.Length; i++)
        {
            if (costs[i] < costs[best])
                best = i;
        }
        return best;
    }
}
