using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Distortion;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;

namespace Converter.Eval.Codebooks;

/// <summary>What to measure: which codebooks at which K, on how many N(0,1) tiles.</summary>
public sealed record CodebookStudySettings(
    IReadOnlyList<CodebookSpec> Codebooks,
    IReadOnlyList<int> Bits,
    int Tiles,
    int Seed,
    bool BestScale,
    int MaxThreads = 0);

/// <summary>One (codebook, K) measurement; field names are the JSON keys of `trellis codebooks --json`.</summary>
public sealed record CodebookStudyResult(
    string Codebook,
    string Multiplier,
    int Bits,
    double Mse,
    double? MseBestScale,
    double? BestScale,
    double RdBound,
    double LloydMax,
    double Rms,
    double Mean,
    double Min,
    double Max,
    double Seconds);

/// <summary>
/// Distortion of trellis-coding i.i.d. N(0,1) data with each codebook normalized to unit RMS (DESIGN.md targets),
/// next to the rate-distortion bound and the Lloyd-Max scalar quantizer. Every codebook sees the same tiles.
/// </summary>
public sealed class CodebookStudy(CodebookTableCache tables)
{
    public IReadOnlyList<CodebookStudyResult> Run(CodebookStudySettings settings, IProgress<string>? progress = null)
    {
        foreach (var bits in settings.Bits)
            TileLayout.CheckBits(bits);
        var tiles = GaussianTiles.Generate(settings.Tiles, settings.Seed);
        var lloydMax = settings.Bits.Distinct().ToDictionary(b => b, LloydMaxQuantizer.GaussianMse);
        var results = new List<CodebookStudyResult>();
        foreach (var spec in settings.Codebooks)
        {
            var table = tables.Get(spec);
            var unitRms = table.Scaled(table.Rms);
            foreach (var bits in settings.Bits)
            {
                progress?.Report($"{spec} K={bits}");
                var started = DateTime.UtcNow;
                var quantizer = new TileQuantizer(new TrellisEncoder(unitRms, bits, settings.MaxThreads));
                double mse = quantizer.MeanSquaredError(tiles);
                double? bestScale = null, mseBest = null;
                if (settings.BestScale)
                {
                    bestScale = GlobalScaleSearch.Search(quantizer, tiles).Scale;
                    mseBest = quantizer.MeanSquaredError(tiles, bestScale.Value);
                }
                results.Add(new CodebookStudyResult(spec.Name, spec.MultiplierHex, bits, mse, mseBest, bestScale,
                    RateDistortion.GaussianBound(bits), lloydMax[bits], table.Rms, table.Mean, table.Min, table.Max,
                    (DateTime.UtcNow - started).TotalSeconds));
            }
        }
        return results;
    }
}
