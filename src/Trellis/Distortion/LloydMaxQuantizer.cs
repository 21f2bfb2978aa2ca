namespace Converter.Trellis.Distortion;

/// <summary>
/// The optimal scalar (Lloyd-Max) quantizer of N(0,1) with 2^K levels, found by Lloyd's iteration on exact-enough
/// Gaussian moments. Computed rather than tabulated so that any K has a value; DESIGN.md's published K = 1..4
/// figures (0.3634, 0.1175, 0.03455, 0.009501) check it.
/// </summary>
public static class LloydMaxQuantizer
{
    private const double Range = 12.0;
    private const int GridPoints = 1 << 18;

    /// <summary>Minimum mean squared error of a 2^K-level scalar quantizer for a unit Gaussian.</summary>
    public static double GaussianMse(int bits)
    {
        var moments = GaussianMoments.Instance;
        int levels = 1 << bits;
        var centers = new double[levels];
        for (int i = 0; i < levels; i++)
            centers[i] = -3.0 + 6.0 * (i + 0.5) / levels;
        var bounds = new double[levels + 1];
        double mse = double.MaxValue;
        for (int iter = 0; iter < 100_000; iter++)
        {
            bounds[0] = -Range;
            bounds[levels] = Range;
            for (int i = 1; i < levels; i++)
                bounds[i] = 0.5 * (centers[i - 1] + centers[i]);
            double total = 0;
            for (int i = 0; i < levels; i++)
            {
                var (m0, m1, m2) = moments.Between(bounds[i], bounds[i + 1]);
                double c = m0 > 0 ? m1 / m0 : centers[i];
                centers[i] = c;
                total += m2 - 2 * c * m1 + c * c * m0;
            }
            if (Math.Abs(mse - total) < 1e-13 * total)
                return total;
            mse = total;
        }
        return mse;
    }

    /// <summary>Cumulative ∫φ, ∫xφ, ∫x²φ on a fine grid over [−12, 12], interpolated linearly between grid points.</summary>
    private sealed class GaussianMoments
    {
        public static readonly GaussianMoments Instance = new();

        private readonly double[] _c0 = new double[GridPoints + 1];
        private readonly double[] _c1 = new double[GridPoints + 1];
        private readonly double[] _c2 = new double[GridPoints + 1];
        private readonly double _h = 2 * Range / GridPoints;

        private GaussianMoments()
        {
            double norm = 1 / Math.Sqrt(2 * Math.PI);
            double Pdf(double x) => norm * Math.Exp(-0.5 * x * x);
            for (int i = 0; i < GridPoints; i++)
            {
                // Simpson's rule on each cell.
                double a = -Range + i * _h, b = a + _h, m = 0.5 * (a + b);
                double fa = Pdf(a), fm = Pdf(m), fb = Pdf(b);
                _c0[i + 1] = _c0[i] + _h / 6 * (fa + 4 * fm + fb);
                _c1[i + 1] = _c1[i] + _h / 6 * (a * fa + 4 * m * fm + b * fb);
                _c2[i + 1] = _c2[i] + _h / 6 * (a * a * fa + 4 * m * m * fm + b * b * fb);
            }
        }

        public (double M0, double M1, double M2) Between(double a, double b) =>
            (At(_c0, b) - At(_c0, a), At(_c1, b) - At(_c1, a), At(_c2, b) - At(_c2, a));

        private double At(double[] cumulative, double x)
        {
            double pos = Math.Clamp((x + Range) / _h, 0, GridPoints);
            int i = Math.Min((int)pos, GridPoints - 1);
            double f = pos - i;
            return cumulative[i] + f * (cumulative[i + 1] - cumulative[i]);
        }
    }
}
