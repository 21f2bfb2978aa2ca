using System.Diagnostics;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Distortion;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;

namespace Converter.Eval.Codebooks.Screening;

/// <summary>
/// Screens codebook multipliers of one family: every candidate's table Viterbi-encodes the same seeded N(0,1)
/// tiles (tail-biting, the converter's encoder) at each K, and its per-tile MSEs are compared, tile by tile, with
/// those of the multiplier exllamav3 locks. The tiles are scaled to each codebook's RMS rather than the table to unit
/// RMS (as `trellis codebooks` does), so the search compares against the codebook's exact fp16 values on the CPU and
/// the GPU alike; the MSE is reported per unit variance either way.
/// </summary>
public sealed class MultiplierScreen
{
    private readonly float[] _tiles;
    private readonly ITableEncoders _encoders;
    private readonly Dictionary<int, double[]> _referenceTileMse = new();

    public MultiplierScreen(ScreenSettings settings, ITableEncoders encoders)
    {
        settings.Validate();
        Settings = settings;
        _encoders = encoders;
        _tiles = GaussianTiles.Generate(settings.Tiles, settings.Seed);
        var reference = CodebookTable.Build(settings.Reference);
        foreach (var bits in settings.Bits)
            _referenceTileMse[bits] = TileMse(reference, bits);
    }

    public ScreenSettings Settings { get; }

    /// <summary>The reference's per-tile MSE at K (the baseline every candidate is paired with).</summary>
    public IReadOnlyList<double> ReferenceTileMse(int bits) => _referenceTileMse[bits];

    /// <summary>Builds <paramref name="multiplier"/>'s table, encodes the tiles at every K and pairs the result with the reference.</summary>
    public ScreenResult Measure(uint multiplier) => Measure(multiplier, out _);

    /// <summary>As <see cref="Measure(uint)"/>, also handing back the per-tile MSE at each K (for tests and diagnostics).</summary>
    public ScreenResult Measure(uint multiplier, out IReadOnlyDictionary<int, double[]> tileMse)
    {
        var clock = Stopwatch.StartNew();
        var spec = new CodebookSpec(Settings.Kind, multiplier);
        var table = CodebookTable.Build(spec);
        var perBits = new List<ScreenBitsResult>();
        var perTile = new Dictionary<int, double[]>();
        foreach (var bits in Settings.Bits)
        {
            var mse = TileMse(table, bits);
            perTile[bits] = mse;
            var own = MeanInterval.Of(mse);
            var reference = _referenceTileMse[bits];
            var paired = MeanInterval.Paired(mse, reference);
            perBits.Add(new ScreenBitsResult(bits, own.Mean, own.Low, own.High, RateDistortion.GaussianBound(bits), reference.Average(),
                paired.Mean, paired.Low, paired.High, paired.ExcludesZero));
        }
        tileMse = perTile;
        return new ScreenResult(spec.MultiplierHex, table.Rms, table.Mean, perBits, _encoders.Device, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Per-tile MSE of unit-variance tiles coded with <paramref name="table"/> at K = <paramref name="bits"/>.</summary>
    private double[] TileMse(CodebookTable table, int bits)
    {
        float rms = (float)table.Rms;
        var targets = new float[_tiles.Length];
        for (int i = 0; i < targets.Length; i++)
            targets[i] = _tiles[i] * rms;
        var decoded = new float[targets.Length];
        _encoders.For(table.Memory, bits).Encode(targets, new ushort[targets.Length], decoded);
        var mse = new double[Settings.Tiles];
        double variance = (double)rms * rms;
        for (int t = 0; t < mse.Length; t++)
        {
            double sum = 0;
            for (int i = t * TileLayout.Length; i < (t + 1) * TileLayout.Length; i++)
            {
                double e = decoded[i] - targets[i];
                sum += e * e;
            }
            mse[t] = sum / TileLayout.Length / variance;
        }
        return mse;
    }
}
