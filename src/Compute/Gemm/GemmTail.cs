using System.Runtime.Intrinsics;

namespace Converter.Compute.Gemm;

/// <summary>The scalar remainder of a dot product that the vector loop of a kernel leaves over.</summary>
internal static unsafe class GemmTail
{
    /// <summary>Σ_{p0 ≤ p &lt; kc} a[p]·b[p]; zero when the vector loop consumed everything.</summary>
    public static float Dot(float* a, float* b, int p0, int kc)
    {
        float s = 0;
        for (int p = p0; p < kc; p++)
            s = MathF.FusedMultiplyAdd(a[p], b[p], s);
        return s;
    }

    /// <summary>The tails of one x row against four consecutive W rows (stride <paramref name="ld"/>).</summary>
    public static Vector128<float> Dot4(float* x, float* w, nint ld, int p0, int kc) =>
        Vector128.Create(Dot(x, w, p0, kc), Dot(x, w + ld, p0, kc), Dot(x, w + 2 * ld, p0, kc), Dot(x, w + 3 * ld, p0, kc));
}
