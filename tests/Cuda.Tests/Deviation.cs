using System.Numerics;

namespace Converter.Cuda.Tests;

/// <summary>How far a GPU result is from the CPU's, for the tests that compare the two.</summary>
internal static class Deviation
{
    /// <summary>‖actual − expected‖ / ‖expected‖ in double; +∞ when <paramref name="actual"/> holds NaN or ±Inf.</summary>
    public static double Relative<T>(ReadOnlySpan<T> actual, ReadOnlySpan<T> expected) where T : unmanaged, INumberBase<T>
    {
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double a = double.CreateChecked(actual[i]), e = double.CreateChecked(expected[i]);
            if (!double.IsFinite(a))
                return double.PositiveInfinity;
            num += (a - e) * (a - e);
            den += e * e;
        }
        return Math.Sqrt(num / den);
    }
}
