using Converter.Compute;
using Converter.Formats.HuggingFace;

namespace Converter.Models.Rotary;

/// <summary>
/// A model's rotary frequencies and a cos/sin table shared by all its layers, grown on demand to the longest
/// sequence seen so far (instance state, safe to use from several threads).
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _inverseFrequencies;
    private readonly Lock _lock = new();
    private RotaryTable? _table;

    public RotaryEmbedding(RopeConfig rope, int headDim)
    {
        _inverseFrequencies = RopeFrequencies.Compute(rope, headDim);
    }

    public ReadOnlySpan<float> InverseFrequencies => _inverseFrequencies;

    /// <summary>A table covering at least positions 0..tokens−1.</summary>
    public RotaryTable TableFor(int tokens)
    {
        lock (_lock)
        {
            if (_table == null || _table.Positions < tokens)
                _table = new RotaryTable(_inverseFrequencies, Math.Max(tokens, 2 * (_table?.Positions ?? 0)));
            return _table;
        }
    }
}
