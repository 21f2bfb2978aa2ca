using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Converter.Trellis.Viterbi;

public static partial class SimdViterbiEncoder
{
    /// <summary>
    /// The same step on 512-bit vectors, 64 to-nodes at a time. The previous-cost expansion prev[s &gt;&gt; K] is a
    /// broadcast when 2^K ≥ 16 and one permute of 8 loaded costs otherwise; it is chosen by a type parameter so the
    /// inner loop carries no branch. Cost rows are allocated 16 floats long so the 8-float load never leaves them.
    /// </summary>
    internal static class Wide
    {
        private const int WideBlock = 64;

        internal static void Step(ReadOnlySpan<float> table, float target, ReadOnlySpan<float> previous, Span<float> current, Span<byte> backPointers, int bits)
        {
            if (bits >= 4)
                Run<Broadcast>(table, target, previous, current, backPointers, bits);
            else
                Run<Permute>(table, target, previous, current, backPointers, bits);
        }

        private interface IExpand
        {
            static abstract Vector512<float> Prior(ref float prev, int s, int bits, Vector512<int> index);
        }

        private readonly struct Broadcast : IExpand
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public static Vector512<float> Prior(ref float prev, int s, int bits, Vector512<int> index) =>
                Vector512.Create(Unsafe.Add(ref prev, s >> bits));
        }

        private readonly struct Permute : IExpand
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public static Vector512<float> Prior(ref float prev, int s, int bits, Vector512<int> index) =>
                Vector512.Shuffle(Vector512.Create(Vector256.LoadUnsafe(ref prev, (nuint)(s >> bits)), Vector256<float>.Zero), index);
        }

        private static void Run<TExpand>(ReadOnlySpan<float> table, float target, ReadOnlySpan<float> previous, Span<float> current, Span<byte> backPointers, int bits)
            where TExpand : struct, IExpand
        {
            int nodes = 1 << (16 - bits), fanin = 1 << bits, shift = 16 - bits;
            ref float tab = ref MemoryMarshal.GetReference(table);
            ref float prev = ref MemoryMarshal.GetReference(previous);
            ref float cur = ref MemoryMarshal.GetReference(current);
            ref byte bp = ref MemoryMarshal.GetReference(backPointers);
            var w = Vector512.Create(target);
            var jMask = Vector512.Create((uint)fanin - 1);
            var costMask = ~jMask;
            var index = Vector512.ShiftRightLogical(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), bits);

            for (int o0 = 0; o0 < nodes; o0 += WideBlock)
            {
                var b0 = Vector512<uint>.AllBitsSet;
                var b1 = b0;
                var b2 = b0;
                var b3 = b0;
                for (int j = 0; j < fanin; j++)
                {
                    int s = (j << shift) + o0;
                    var jv = Vector512.Create((uint)j);
                    b0 = Vector512.Min(b0, (Cand<TExpand>(ref tab, ref prev, s, bits, w, index) & costMask) | jv);
                    b1 = Vector512.Min(b1, (Cand<TExpand>(ref tab, ref prev, s + 16, bits, w, index) & costMask) | jv);
                    b2 = Vector512.Min(b2, (Cand<TExpand>(ref tab, ref prev, s + 32, bits, w, index) & costMask) | jv);
                    b3 = Vector512.Min(b3, (Cand<TExpand>(ref tab, ref prev, s + 48, bits, w, index) & costMask) | jv);
                }
                (b0 & costMask).AsSingle().StoreUnsafe(ref cur, (nuint)o0);
                (b1 & costMask).AsSingle().StoreUnsafe(ref cur, (nuint)(o0 + 16));
                (b2 & costMask).AsSingle().StoreUnsafe(ref cur, (nuint)(o0 + 32));
                (b3 & costMask).AsSingle().StoreUnsafe(ref cur, (nuint)(o0 + 48));
                var bytes = Vector512.Narrow(Vector512.Narrow(b0 & jMask, b1 & jMask), Vector512.Narrow(b2 & jMask, b3 & jMask));
                bytes.StoreUnsafe(ref bp, (nuint)o0);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<uint> Cand<TExpand>(ref float tab, ref float prev, int s, int bits, Vector512<float> w, Vector512<int> index)
            where TExpand : struct, IExpand
        {
            var e = Vector512.LoadUnsafe(ref tab, (nuint)s) - w;
            return Vector512.FusedMultiplyAdd(e, e, TExpand.Prior(ref prev, s, bits, index)).AsUInt32();
        }
    }
}
