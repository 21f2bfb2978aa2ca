using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Converter.Compute.Gemm;

/// <summary>
/// 4×4 block with 16 zmm accumulators and 8 operand registers (24 of the 32 AVX-512 registers): each k-step of
/// 16 floats does 8 loads for 16 FMAs, so the loop is bound by FMA throughput, not by loads.
/// </summary>
internal readonly unsafe struct Vector512GemmKernel : IGemmKernel
{
    public static void Tile4x4(float* x, nint ldx, float* w, nint ldw, int kc, float* y, nint ldy)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        float* x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx;
        float* w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw;
        int p = 0;
        for (; p <= kc - 16; p += 16)
        {
            var a0 = Vector512.Load(x0 + p);
            var a1 = Vector512.Load(x1 + p);
            var a2 = Vector512.Load(x2 + p);
            var a3 = Vector512.Load(x3 + p);
            var b0 = Vector512.Load(w0 + p);
            var b1 = Vector512.Load(w1 + p);
            var b2 = Vector512.Load(w2 + p);
            var b3 = Vector512.Load(w3 + p);
            c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(a0, b2, c02);
            c03 = Vector512.FusedMultiplyAdd(a0, b3, c03);
            c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(a1, b2, c12);
            c13 = Vector512.FusedMultiplyAdd(a1, b3, c13);
            c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(a2, b2, c22);
            c23 = Vector512.FusedMultiplyAdd(a2, b3, c23);
            c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(a3, b2, c32);
            c33 = Vector512.FusedMultiplyAdd(a3, b3, c33);
        }
        // Reduce all sixteen accumulators before anything that may call out, so none of them lives across a
        // call (which would make the JIT spill them, inside the loop too).
        var r0 = Reduce(c00, c01, c02, c03);
        var r1 = Reduce(c10, c11, c12, c13);
        var r2 = Reduce(c20, c21, c22, c23);
        var r3 = Reduce(c30, c31, c32, c33);
        if (p < kc)
        {
            r0 += GemmTail.Dot4(x0, w, ldw, p, kc);
            r1 += GemmTail.Dot4(x1, w, ldw, p, kc);
            r2 += GemmTail.Dot4(x2, w, ldw, p, kc);
            r3 += GemmTail.Dot4(x3, w, ldw, p, kc);
        }
        (Vector128.Load(y) + r0).Store(y);
        (Vector128.Load(y + ldy) + r1).Store(y + ldy);
        (Vector128.Load(y + 2 * ldy) + r2).Store(y + 2 * ldy);
        (Vector128.Load(y + 3 * ldy) + r3).Store(y + 3 * ldy);
    }

    /// <summary>
    /// The four sums of one block row in one 128-bit vector: fold 512→256, then three horizontal adds — half the
    /// instructions of four separate reductions.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Reduce(Vector512<float> c0, Vector512<float> c1, Vector512<float> c2, Vector512<float> c3)
    {
        var s01 = Avx.HorizontalAdd(c0.GetLower() + c0.GetUpper(), c1.GetLower() + c1.GetUpper());
        var s23 = Avx.HorizontalAdd(c2.GetLower() + c2.GetUpper(), c3.GetLower() + c3.GetUpper());
        var s = Avx.HorizontalAdd(s01, s23);
        return s.GetLower() + s.GetUpper();
    }
}
