namespace Converter.Trellis.Distortion;

/// <summary>Reference distortions for a unit-variance Gaussian source, the yardsticks of `trellis codebooks`.</summary>
public static class RateDistortion
{
    /// <summary>Shannon's distortion-rate bound D(R) = 2^(−2R) for N(0,1) at R bits per sample.</summary>
    public static double GaussianBound(int bits) => Math.Pow(2, -2.0 * bits);
}
