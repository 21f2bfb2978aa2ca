namespace Converter.Compute;

/// <summary>
/// cos and sin of position·inv_freq for positions 0..Positions−1 and the HeadDim/2 frequencies, computed once per
/// model and shared by every layer. The frequencies themselves (default or scaled) are the model's business.
/// </summary>
public sealed class RotaryTable
{
    private readonly float[] _cos;
    private readonly float[] _sin;

    /// <param name="attentionScale">
    /// Multiplies every cos and sin (Phi-3's longrope attention factor, transformers' attention_scaling); 1 otherwise.
    /// </param>
    public RotaryTable(ReadOnlySpan<float> inverseFrequencies, int positions, float attentionScale = 1f)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(positions);
        if (inverseFrequencies.IsEmpty)
            throw new ArgumentException("no rotary frequencies", nameof(inverseFrequencies));
        Half = inverseFrequencies.Length;
        Positions = positions;
        _cos = new float[positions * Half];
        _sin = new float[positions * Half];
        for (int p = 0; p < positions; p++)
        {
            for (int i = 0; i < Half; i++)
            {
                // HF forms the angle as a float32 product (inv_freq @ position_ids) before cos/sin; do the same.
                float angle = p * inverseFrequencies[i];
                _cos[p * Half + i] = (float)Math.Cos(angle) * attentionScale;
                _sin[p * Half + i] = (float)Math.Sin(angle) * attentionScale;
            }
        }
    }

    /// <summary>Number of frequencies: half the rotated dimension.</summary>
    public int Half { get; }

    /// <summary>Positions covered: the longest sequence this table can rotate.</summary>
    public int Positions { get; }

    /// <summary>cos for all positions, (Positions, Half) row-major.</summary>
    public ReadOnlySpan<float> AllCos => _cos;

    /// <summary>sin for all positions, (Positions, Half) row-major.</summary>
    public ReadOnlySpan<float> AllSin => _sin;

    public ReadOnlySpan<float> Cos(int position) => _cos.AsSpan(position * Half, Half);

    public ReadOnlySpan<float> Sin(int position) => _sin.AsSpan(position * Half, Half);
}
