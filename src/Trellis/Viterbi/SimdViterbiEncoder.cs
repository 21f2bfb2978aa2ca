using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Converter.Trellis.Tiles;

namespace Converter.Trellis.Viterbi;

/// <summary>
/// The CPU encoder: the same DP step as <see cref="ReferenceViterbiEncoder"/>, 32 to-nodes at a time in four
/// 256-bit vectors. For a fixed j the 32 states <c>(j &lt;&lt; (16−K)) | o</c> are contiguous in the codebook table,
/// so emission errors are plain vector loads; the previous cost of state s is <c>prev[s &gt;&gt; K]</c>, one
/// broadcast per vector when 2^K ≥ 8 and a small in-register expansion for K = 1, 2. Results equal the reference
/// bit for bit (same float32 operations, same strict-less tie rule).
/// </summary>
public static class SimdViterbiEncoder
{
    private const int Block = 32;

    /// <summary>Encodes one tile given in trellis-position order; writes 256 tail-biting states.</summary>
    public static void EncodeTile(ReadOnlySpan<float> table, ReadOnlySpan<float> target, Span<ushort> states, ViterbiWorkspace ws)
    {
        if (target.Length != TileLayout.Length || states.Length != TileLayout.Length)
            throw new ArgumentException("a tile has 256 positions");
        if (!Vector256.IsHardwareAccelerated)
        {
            ViterbiTailBiting.Encode(table, target, states, ws, ReferenceViterbiEncoder.Step);
            return;
        }
        ViterbiTailBiting.Encode(table, target, states, ws, Step);
    }

    internal static void Step(ReadOnlySpan<float> table, float target, ReadOnlySpan<float> previous, Span<float> current, Span<byte> backPointers, int bits)
    {
        int nodes = 1 << (16 - bits), fanin = 1 << bits, shift = 16 - bits;
        ref float tab = ref MemoryMarshal.GetReference(table);
        ref float prev = ref MemoryMarshal.GetReference(previous);
        ref float cur = ref MemoryMarshal.GetReference(current);
        ref byte bp = ref MemoryMarshal.GetReference(backPointers);
        var w = Vector256.Create(target);
        var inf = Vector256.Create(float.PositiveInfinity);

        for (int o0 = 0; o0 < nodes; o0 += Block)
        {
            Vector256<float> b0 = inf, b1 = inf, b2 = inf, b3 = inf;
            Vector256<uint> j0 = default, j1 = default, j2 = default, j3 = default;
            for (int j = 0; j < fanin; j++)
            {
                int s = (j << shift) + o0;
                var jv = Vector256.Create((uint)j);
                var c0 = Candidate(ref tab, ref prev, s, bits, w);
                var c1 = Candidate(ref tab, ref prev, s + 8, bits, w);
                var c2 = Candidate(ref tab, ref prev, s + 16, bits, w);
                var c3 = Candidate(ref tab, ref prev, s + 24, bits, w);
                var m0 = Vector256.LessThan(c0, b0);
                var m1 = Vector256.LessThan(c1, b1);
                var m2 = Vector256.LessThan(c2, b2);
                var m3 = Vector256.LessThan(c3, b3);
                b0 = Vector256.ConditionalSelect(m0, c0, b0);
                b1 = Vector256.ConditionalSelect(m1, c1, b1);
                b2 = Vector256.ConditionalSelect(m2, c2, b2);
                b3 = Vector256.ConditionalSelect(m3, c3, b3);
                j0 = Vector256.ConditionalSelect(m0.AsUInt32(), jv, j0);
                j1 = Vector256.ConditionalSelect(m1.AsUInt32(), jv, j1);
                j2 = Vector256.ConditionalSelect(m2.AsUInt32(), jv, j2);
                j3 = Vector256.ConditionalSelect(m3.AsUInt32(), jv, j3);
            }
            b0.StoreUnsafe(ref cur, (nuint)o0);
            b1.StoreUnsafe(ref cur, (nuint)(o0 + 8));
            b2.StoreUnsafe(ref cur, (nuint)(o0 + 16));
            b3.StoreUnsafe(ref cur, (nuint)(o0 + 24));
            var bytes = Vector256.Narrow(Vector256.Narrow(j0, j1), Vector256.Narrow(j2, j3));
            bytes.StoreUnsafe(ref bp, (nuint)o0);
        }
    }

    /// <summary>prev[s+i &gt;&gt; K] + (table[s+i] − w)² for the 8 states s..s+7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Candidate(ref float tab, ref float prev, int s, int bits, Vector256<float> w)
    {
        var e = Vector256.LoadUnsafe(ref tab, (nuint)s) - w;
        Vector256<float> p;
        if (bits >= 3)
        {
            p = Vector256.Create(Unsafe.Add(ref prev, s >> bits));
        }
        else if (bits == 2)
        {
            int i = s >> 2;
            p = Vector256.Create(Vector128.Create(Unsafe.Add(ref prev, i)), Vector128.Create(Unsafe.Add(ref prev, i + 1)));
        }
        else
        {
            var v = Vector128.LoadUnsafe(ref prev, (nuint)(s >> 1));
            p = Vector256.Create(
                Vector128.Shuffle(v, Vector128.Create(0, 0, 1, 1)),
                Vector128.Shuffle(v, Vector128.Create(2, 2, 3, 3)));
        }
        return p + e * e;
    }
}
