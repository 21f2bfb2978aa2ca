using Converter.Formats.HuggingFace;

namespace Converter.Models.Rotary;

/// <summary>RoPE inverse frequencies as transformers' ROPE_INIT_FUNCTIONS compute them (modeling_rope_utils.py).</summary>
public static class RopeFrequencies
{
    /// <summary>
    /// The rotaryDims/2 inverse frequencies for <paramref name="rope"/>; for LongRoPE those of sequences of
    /// <paramref name="tokens"/> tokens (the long factors past the original context, as transformers switches).
    /// </summary>
    public static float[] Compute(RopeConfig rope, int rotaryDims, int tokens = 0) => rope.Type switch
    {
        RopeType.Default => Default(rope.Theta, rotaryDims),
        RopeType.Llama3 => Llama3(Default(rope.Theta, rotaryDims), rope.Llama3
            ?? throw new ArgumentException("llama3 rope without its scaling parameters", nameof(rope))),
        RopeType.LongRope => LongRope(rope.Theta, rotaryDims, rope.LongRope
            ?? throw new ArgumentException("longrope without its scaling parameters", nameof(rope)), tokens),
        RopeType.Yarn => Yarn(rope.Theta, rotaryDims, rope.Yarn ?? throw new ArgumentException("yarn rope without its scaling parameters", nameof(rope))),
        _ => throw new NotSupportedException($"rope type {rope.Type} is not implemented (supported: default, llama3, longrope, yarn)"),
    };

    /// <summary>
    /// YaRN (_compute_yarn_parameters): with the correction range [low, high] of dimensions whose wavelength makes
    /// beta_fast resp. beta_slow turns over the original context (floored/ceiled when truncating, clamped to
    /// [0, d − 1]), extrapolation weight w_i = 1 − clamp((i − low)/(high − low), 0, 1) and
    /// inv_freq = interp·(1 − w) + extrap·w, interp = extrap / factor.
    /// </summary>
    public static float[] Yarn(double theta, int rotaryDims, YarnRopeScaling scaling)
    {
        double CorrectionDim(double rotations) =>
            rotaryDims * Math.Log(scaling.OriginalMaxPositionEmbeddings / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = CorrectionDim(scaling.BetaFast), high = CorrectionDim(scaling.BetaSlow);
        if (scaling.Truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        low = Math.Max(low, 0);
        high = Math.Min(high, rotaryDims - 1);
        if (low == high)
            high += 0.001;
        var inv = new float[rotaryDims / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            // torch computes these in float32: pos_freqs = base ** (arange(0, d, 2) / d).
            float posFreq = (float)Math.Pow(theta, (float)(2 * i) / rotaryDims);
            float extrapolation = 1f / posFreq, interpolation = 1f / ((float)scaling.Factor * posFreq);
            float ramp = Math.Clamp((float)((i - low) / (high - low)), 0f, 1f);
            float w = 1f - ramp;
            inv[i] = interpolation * (1 - w) + extrapolation * w;
        }
        return inv;
    }

    /// <summary>
    /// LongRoPE (_compute_longrope_parameters): inv_freq[i] = 1 / (ext[i] · θ^(2i/d)), ext the short factors, or the
    /// long ones for sequences longer than the original context.
    /// </summary>
    public static float[] LongRope(double theta, int rotaryDims, LongRopeScaling scaling, int tokens)
    {
        var factors = tokens > scaling.OriginalMaxPositionEmbeddings ? scaling.LongFactor : scaling.ShortFactor;
        if (factors.Count != rotaryDims / 2)
            throw new ArgumentException($"longrope has {factors.Count} factors for {rotaryDims / 2} rotary frequencies", nameof(scaling));
        var inv = Default(theta, rotaryDims);
        for (int i = 0; i < inv.Length; i++)
            inv[i] = (float)(1.0 / (factors[i] * Math.Pow(theta, 2.0 * i / rotaryDims)));
        return inv;
    }

    /// <summary>inv_freq[i] = θ^(−2i/d) (_compute_default_rope_parameters).</summary>
    public static float[] Default(double theta, int headDim)
    {
        if (headDim <= 0 || headDim % 2 != 0)
            throw new ArgumentException($"head dimension {headDim} must be positive and even", nameof(headDim));
        var inv = new float[headDim / 2];
        for (int i = 0; i < inv.Length; i++)
            inv[i] = (float)(1.0 / Math.Pow(theta, 2.0 * i / headDim));
        return inv;
    }

    /// <summary>
    /// Llama 3.1 scaling (_compute_llama3_parameters): wavelengths shorter than original/high_freq_factor are
    /// kept, longer than original/low_freq_factor are divided by factor, and those between are interpolated with
    /// smooth = (original/wavelength − low) / (high − low): (1 − smooth)·f/factor + smooth·f.
    /// </summary>
    public static float[] Llama3(ReadOnlySpan<float> inverseFrequencies, Llama3RopeScaling scaling)
    {
        double factor = scaling.Factor, low = scaling.LowFreqFactor, high = scaling.HighFreqFactor;
        double original = scaling.OriginalMaxPositionEmbeddings;
        double lowFreqWavelength = original / low, highFreqWavelength = original / high;
        var result = new float[inverseFrequencies.Length];
        for (int i = 0; i < result.Length; i++)
        {
            double f = inverseFrequencies[i];
            double wavelength = 2 * Math.PI / f;
            if (wavelength < highFreqWavelength)
                result[i] = (float)f;
            else if (wavelength > lowFreqWavelength)
                result[i] = (float)(f / factor);
            else
            {
                double smooth = (original / wavelength - low) / (high - low);
                result[i] = (float)((1 - smooth) * f / factor + smooth * f);
            }
        }
        return result;
    }
}
