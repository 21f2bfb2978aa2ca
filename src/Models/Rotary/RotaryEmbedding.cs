using Converter.Compute;
using Converter.Formats.HuggingFace;

namespace Converter.Models.Rotary;

/// <summary>
/// One rotary setting's frequencies and a cos/sin table shared by all layers that use it, grown on demand to the
/// longest sequence seen so far (instance state, safe to use from several threads). LongRoPE keeps a second table
/// for sequences past its original context, whose frequencies differ.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly RopeConfig _rope;
    private readonly int _rotaryDims;
    private readonly float _attentionScale;
    private readonly Lock _lock = new();
    private RotaryTable? _table;
    private RotaryTable? _longTable;

    /// <param name="rotaryDims">The dimensions of each head that rotate (head_dim unless partial).</param>
    public RotaryEmbedding(RopeConfig rope, int rotaryDims)
    {
        _rope = rope;
        _rotaryDims = rotaryDims;
        _attentionScale = (float)(rope.LongRope?.AttentionFactor ?? rope.Yarn?.AttentionFactor ?? 1.0);
        // Validates the setting up front rather than at the first forward.
        _ = RopeFrequencies.Compute(rope, rotaryDims);
    }

    public RopeConfig Rope => _rope;

    /// <summary>A table covering at least positions 0..tokens−1, with the frequencies of sequences that long.</summary>
    public RotaryTable TableFor(int tokens)
    {
        lock (_lock)
        {
            bool isLong = _rope.LongRope is { } longRope && tokens > longRope.OriginalMaxPositionEmbeddings;
            ref var table = ref isLong ? ref _longTable : ref _table;
            if (table == null || table.Positions < tokens)
            {
                var frequencies = RopeFrequencies.Compute(_rope, _rotaryDims, tokens);
                table = new RotaryTable(frequencies, Math.Max(tokens, 2 * (table?.Positions ?? 0)), _attentionScale);
            }
            return table;
        }
    }
}
