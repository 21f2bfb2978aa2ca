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

    public double MeanSquaredError(ReadOnlySpan<float> tiles, double scale = 1.0)
    {
        if (tiles.Length % TileLayout.Length != 0)
            throw new ArgumentException("tiles must hold whole tiles of 256 values", nameof(tiles));
        if (_scaled.Length != tiles.Length)
        {
            _scaled = new float[tiles.Length];
            _states = new ushort[tiles.Length];
            _decoded = new float[tiles.Length];
        }
        float s = (float)scale;
        for (int i = 0; i < tiles.Length; i++)
            _scaled[i] = tiles[i] * s;
        Encoder.Encode(_scaled, _states, _decoded);
        double sum = 0;
        float inv = 1f / s;
        for (int i = 0; i < tiles.Length; i++)
        {
            double e = _decoded[i] * inv - tiles[i];
            sum += e * e;
        }
        return sum / tiles.Length;
    }
}
