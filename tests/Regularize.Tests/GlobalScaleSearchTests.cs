using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Distortion;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

public class GlobalScaleSearchTests
{
    [TestCase(1.0, 2.0, 5.0, -0.5)] // vertex at −1 step, clamped
    [TestCase(2.0, 1.0, 4.0, -0.25)]
    [TestCase(3.0, 2.0, 3.0, 0.0)]
    [TestCase(1.0, 2.0, 1.0, 0.0)]
    [TestCase(10.0, 1.0, 1.0, 0.5)]
    public void ParabolaVertexOffset(double y0, double y1, double y2, double expected) =>
        Assert.That(GlobalScaleSearch.ParabolaOffset(y0, y1, y2), Is.EqualTo(expected).Within(1e-12));

    [Test]
    public void FindsTheScaleThatUndoesAMismatchedCodebook()
    {
        // Data at RMS 1 against a codebook at RMS 2: the best global scale is near 2, and no grid point does better.
        var table = CodebookTable.Build(CodebookSpec.Parse("mcg"));
        var quantizer = new TileQuantizer(new TrellisEncoder(table.Scaled(table.Rms / 2), 2));
        var tiles = GaussianTiles.Generate(24, seed: 9);
        var result = GlobalScaleSearch.Search(quantizer, tiles);
        Assert.That(result.Scale, Is.InRange(1.6, 2.2));
        double best = quantizer.MeanSquaredError(tiles, result.Scale);
        Assert.That(best, Is.LessThanOrEqualTo(quantizer.MeanSquaredError(tiles, 1.0)));
        // The coarse walk stops once the MSE rises: fewer than the full grid's 10 encodes, plus the 5 fine ones.
        Assert.That(result.Evaluations.Count, Is.InRange(5 + 3, 5 + 9));
    }

    [TestCase(1, 0.5)]
    [TestCase(2, 1.0)]
    [TestCase(4, 1.0)]
    [TestCase(3, 2.0)]
    [TestCase(2, 4.0)]
    public void CoarseWalkFindsTheFullGridMinimum(int bits, double codebookRms)
    {
        var table = CodebookTable.Build(CodebookSpec.Parse("mul1"));
        var quantizer = new TileQuantizer(new TrellisEncoder(table.Scaled(table.Rms / codebookRms), bits));
        var tiles = GaussianTiles.Generate(8, seed: bits);
        double[] grid = [0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9];
        var full = grid.Select(s => quantizer.MeanSquaredError(tiles, s)).ToArray();
        int expected = Array.IndexOf(full, full.Min());
        Assert.That(GlobalScaleSearch.CoarseArgMin(i => full[i]), Is.EqualTo(expected));
    }

    [TestCase(new[] { 5.0, 4, 3, 2, 1, 1, 2, 3, 4, 5 }, 4)]
    [TestCase(new[] { 1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, 0)]
    [TestCase(new[] { 10.0, 9, 8, 7, 6, 5, 4, 3, 2, 1 }, 9)]
    [TestCase(new[] { 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 0)]
    [TestCase(new[] { 9.0, 8, 7, 6, 5, 5, 5, 6, 7, 8 }, 4)]
    public void CoarseWalkBreaksTiesLikeTheFullScan(double[] values, int expected) =>
        Assert.That(GlobalScaleSearch.CoarseArgMin(i => values[i]), Is.EqualTo(expected));
}
