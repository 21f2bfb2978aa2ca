using System.Numerics;

namespace Converter.Formats.Numerics;

/// <summary>NaN/Inf detection for weights, so callers can reject a tensor and say where the bad value is.</summary>
public static class FiniteCheck
{
    /// <summary>True when no value is NaN or ±Inf.</summary>
    public static bool AllFinite(ReadOnlySpan<float> values) => IndexOfNonFinite(values) < 0;

    /// <summary>Index of the first NaN or ±Inf, or -1.</summary>
    public static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // x - x is 0 for every finite x and NaN for NaN and ±Inf, so one compare covers both cases.
            var step = Vector<float>.Count;
            for (; i <= values.Length - step; i += step)
            {
                var v = new Vector<float>(values[i..]);
                if (!Vector.EqualsAll(v - v, Vector<float>.Zero))
                    break;
            }
        }
        for (; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
                return i;
        }
        return -1;
    }
}
