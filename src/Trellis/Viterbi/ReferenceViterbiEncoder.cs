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

    /// <remarks>
    /// Each candidate's cost carries its j in the low K mantissa bits, so one unsigned minimum picks both the best
    /// cost and, on a tie, the smallest j (as the kernel's strict-less loop over increasing j does). Costs are
    /// non-negative floats, whose bit patterns order like their values; the K bits of precision given up are
    /// below 2^-15 relative. The SIMD encoder does the same operations, so the two agree bit for bit.
    /// </remarks>
    internal static void Step(ReadOnlySpan<float> table, float target, ReadOnlySpan<float> previous, Span<float> current, Span<byte> backPointers, int bits)
    {
        var g = new TrellisGraph(bits);
        uint jMask = (uint)g.Fanin - 1;
        for (int o = 0; o < g.Nodes; o++)
        {
            uint best = uint.MaxValue;
            for (int j = 0; j < g.Fanin; j++)
            {
                int s = g.State(j, o);
                float e = table[s] - target;
                float c = MathF.FusedMultiplyAdd(e, e, previous[g.FromNode(s)]);
                best = Math.Min(best, (BitConverter.SingleToUInt32Bits(c) & ~jMask) | (uint)j);
            }
            current[o] = BitConverter.UInt32BitsToSingle(best & ~jMask);
            backPointers[o] = (byte)(best & jMask);
        }
    }
}
