using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;

namespace Converter.Trellis.Distortion;

/// <summary>
/// Quantizes tiles at a global scale s and reports the mean squared error <c>mean((Q(s·x)/s − x)²)</c>, the error
/// function of the scale search (docs/exl3-format.md §3.5). Buffers are kept between calls.
/// </summary>
public sealed class TileQuantizer(ITileEncoder encoder)
{
    private float[] _scaled = [];
    private ushort[] _states = [];
    private float[] _decoded = [];

    public ITileEncoder Encoder { get; } = encoder;

    public double MeanSquaredError(ReadOnlySpan<float> tiles, double scale = 1.0) => MeanSquaredErrors(tiles, [scale])[0];

    /// <summary>
    /// The error at each of <paramref name="scales"/>, from one encode of all the scaled copies side by side: each
    /// value equals <see cref="MeanSquaredError"/> at that scale (tiles are encoded independently), but a GPU encoder
    /// gets one launch instead of one per scale. Its small launches queue behind whatever another linear has on the
    /// device, so a search paid that wait once per scale.
    /// </summary>
    public double[] MeanSquaredErrors(ReadOnlySpan<float> tiles, ReadOnlySpan<double> scales)
    {
        if (tiles.Length % TileLayout.Length != 0)
            throw new ArgumentException("tiles must hold whole tiles of 256 values", nameof(tiles));
        int total = checked(tiles.Length * scales.Length);
        // Grown, never shrunk: a search alternates between batches of one and of several scales.
        if (_scaled.Length < total)
        {
            _scaled = new float[total];
            _states = new ushort[total];
            _decoded = new float[total];
        }
        for (int c = 0; c < scales.Length; c++)
        {
            float s = (float)scales[c];
            var copy = _scaled.AsSpan(c * tiles.Length, tiles.Length);
            for (int i = 0; i < tiles.Length; i++)
                copy[i] = tiles[i] * s;
        }
        Encoder.Encode(_scaled.AsMemory(0, total), _states.AsMemory(0, total), _decoded.AsMemory(0, total));
        var errors = new double[scales.Length];
        for (int c = 0; c < scales.Length; c++)
        {
            double sum = 0;
            float inv = 1f / (float)scales[c];
            var decoded = _decoded.AsSpan(c * tiles.Length, tiles.Length);
            for (int i = 0; i < tiles.Length; i++)
            {
                double e = decoded[i] * inv - tiles[i];
                sum += e * e;
            }
            errors[c] = sum / tiles.Length;
        }
        return errors;
    }
}
