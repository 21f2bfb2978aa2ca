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
}
