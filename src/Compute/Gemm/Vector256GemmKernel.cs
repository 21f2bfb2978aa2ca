using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Converter.Compute.Gemm;

/// <summary>
/// The AVX2 / 256-bit form of <see cref="Vector512GemmKernel"/>: same 4×4 block, 8 floats per step. With AVX-512VL
/// the JIT has 32 ymm registers and nothing spills; on AVX2-only machines (16 registers) a few operands do.
/// </summary>
internal readonly unsafe struct Vector256GemmKernel : IGemmKernel
{
    public static void Tile4x4(float* x, nint ldx, float* w, nint ldw, int kc, float* y, nint ldy)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector256<float> c30 = default, c31 = default, c32 = default, c33 = default;
        float* x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx;
        float* w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw;
        int p = 0;
        for (; p <= kc - 8; p += 8)
        {
            var a0 = Vector256.Load(x0 + p);
            var a1 = Vector256.Load(x1 + p);
            var a2 = Vector256.Load(x2 + p);
            var a3 = Vector256.Load(x3 + p);
            var b0 = Vector256.Load(w0 + p);
            var b1 = Vector256.Load(w1 + p);
            var b2 = Vector256.Load(w2 + p);
            var b3 = Vector256.Load(w3 + p);
            c00 = Vector256.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(a0, b1, c01);
            c02 = Vector256.FusedMultiplyAdd(a0, b2, c02);
            c03 = Vector256.FusedMultiplyAdd(a0, b3, c03);
            c10 = Vector256.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(a1, b1, c11);
            c12 = Vector256.FusedMultiplyAdd(a1, b2, c12);
            c13 = Vector256.FusedMultiplyAdd(a1, b3, c13);
            c20 = Vector256.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(a2, b1, c21);
            c22 = Vector256.FusedMultiplyAdd(a2, b2, c22);
            c23 = Vector256.FusedMultiplyAdd(a2, b3, c23);
            c30 = Vector256.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(a3, b1, c31);
            c32 = Vector256.FusedMultiplyAdd(a3, b2, c32);
            c33 = Vector256.FusedMultiplyAdd(a3, b3, c33);
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

    /// <summary>The four sums of one block row in one 128-bit vector (three horizontal adds with AVX).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Reduce(Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3)
    {
        if (!Avx.IsSupported)
            return Vector128.Create(Vector256.Sum(c0), Vector256.Sum(c1), Vector256.Sum(c2), Vector256.Sum(c3));
        var s = Avx.HorizontalAdd(Avx.HorizontalAdd(c0, c1), Avx.HorizontalAdd(c2, c3));
        return s.GetLower() + s.GetUpper();
    }
}
