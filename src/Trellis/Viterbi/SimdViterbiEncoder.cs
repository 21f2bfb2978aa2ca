using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Converter.Trellis.Tiles;

namespace Converter.Trellis.Viterbi;

/// <summary>
/// The CPU encoder: the same DP step as <see cref="ReferenceViterbiEncoder"/>, 32 to-nodes at a time in four
/// 256-bit vectors. For a fixed j the 32 states <c>(j &lt;&lt; (16−K)) | o</c> are contiguous in the codebook table,
/// so emission errors are plain vector loads; the previous cost of state s is <c>prev[s &gt;&gt; K]</c>, one
/// broadcast per vector when 2^K ≥ 8 and a small in-register expansion for K = 1, 2. Each candidate carries its
/// j in its low bits, so the running best is one unsigned minimum (see <see cref="ReferenceViterbiEncoder.Step"/>).
/// Results equal the reference bit for bit (same fused operations, same tie rule).
/// </summary>
public static partial class SimdViterbiEncoder
{
    private const int Block = 32;

    /// <summary>Encodes one tile given in trellis-position order; writes 256 tail-biting states.</summary>
    public static void EncodeTile(ReadOnlySpan<float> table, ReadOnlySpan<float> target, Span<ushort> states, ViterbiWorkspace ws)
    {
        if (target.Length != TileLayout.Length || states.Length != TileLayout.Length)
            throw new ArgumentException("a tile has 256 positions");
        ViterbiTailBiting.Encode(table, target, states, ws, BestStep);
    }

    /// <summary>The widest step this CPU runs natively: 512-bit, else 256-bit, else the scalar reference.</summary>
    internal static ViterbiTailBiting.Step BestStep { get; } =
        Vector512.IsHardwareAccelerated ? Wide.Step
        : Vector256.IsHardwareAccelerated ? Step
        : ReferenceViterbiEncoder.Step;

    /// <summary>The 256-bit step.</summary>
    internal static void Step(ReadOnlySpan<float> table, float target, ReadOnlySpan<float> previous, Span<float> current, Span<byte> backPointers, int bits)
    {
        int nodes = 1 << (16 - bits), fanin = 1 << bits, shift = 16 - bits;
        ref float tab = ref MemoryMarshal.GetReference(table);
        ref float prev = ref MemoryMarshal.GetReference(previous);
        ref float cur = ref MemoryMarshal.GetReference(current);
        ref byte bp = ref MemoryMarshal.GetReference(backPointers);
        var w = Vector256.Create(target);
        var jMask = Vector256.Create((uint)fanin - 1);
        var costMask = ~jMask;

        for (int o0 = 0; o0 < nodes; o0 += Block)
        {
            var b0 = Vector256<uint>.AllBitsSet;
            var b1 = b0;
            var b2 = b0;
            var b3 = b0;
            for (int j = 0; j < fanin; j++)
            {
                int s = (j << shift) + o0;
                var jv = Vector256.Create((uint)j);
                b0 = Vector256.Min(b0, (Candidate(ref tab, ref prev, s, bits, w) & costMask) | jv);
                b1 = Vector256.Min(b1, (Candidate(ref tab, ref prev, s + 8, bits, w) & costMask) | jv);
                b2 = Vector256.Min(b2, (Candidate(ref tab, ref prev, s + 16, bits, w) & costMask) | jv);
                b3 = Vector256.Min(b3, (Candidate(ref tab, ref prev, s + 24, bits, w) & costMask) | jv);
            }
            (b0 & costMask).AsSingle().StoreUnsafe(ref cur, (nuint)o0);
            (b1 & costMask).AsSingle().StoreUnsafe(ref cur, (nuint)(o0 + 8));
            (b2 & costMask).AsSingle().StoreUnsafe(ref cur, (nuint)(o0 + 16));
            (b3 & costMask).AsSingle().StoreUnsafe(ref cur, (nuint)(o0 + 24));
            var bytes = Vector256.Narrow(Vector256.Narrow(b0 & jMask, b1 & jMask), Vector256.Narrow(b2 & jMask, b3 & jMask));
            bytes.StoreUnsafe(ref bp, (nuint)o0);
        }
    }

    /// <summary>fma(e, e, prev[s+i &gt;&gt; K]) with e = table[s+i] − w for the 8 states s..s+7, as bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Candidate(ref float tab, ref float prev, int s, int bits, Vector256<float> w)
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
        return Vector256.FusedMultiplyAdd(e, e, p).AsUInt32();
    }
}
