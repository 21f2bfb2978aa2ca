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
        // Both walks stop once the MSE rises: at least 3 of the coarse grid's 10 points and 3 of the 5 fine ones.
        Assert.That(result.Evaluations.Count, Is.InRange(3 + 3, 9 + 5));
    }

    /// <summary>
    /// The search's walks give exllamav3's scans' answer (every coarse point on every third tile, all five fine points,
    /// the parabola through the best one's neighbours), computed here in full, across widths and codebook scales
    /// that put the minimum at either end of the fine points and in between.
    /// </summary>
    [TestCase(2, 1.0, "mcg")]
    [TestCase(3, 1.3, "mul1")]
    [TestCase(4, 0.8, "mul1")]
    [TestCase(4, 2.2, "3inst")]
    [TestCase(5, 1.6, "mcg")]
    [TestCase(6, 0.35, "mul1")]
    [TestCase(1, 1.0, "3inst")]
    [TestCase(8, 1.1, "mul1")]
    public void TheWalksGiveTheFullScansScale(int bits, double codebookRms, string codebook)
    {
        var table = CodebookTable.Build(CodebookSpec.Parse(codebook));
        var quantizer = new TileQuantizer(new TrellisEncoder(table.Scaled(table.Rms / codebookRms), bits));
        var tiles = GaussianTiles.Generate(30, seed: bits);
        double[] grid = [0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9];
        var everyThird = Enumerable.Range(0, 30).Where(t => t % 3 == 0).SelectMany(t => tiles.Skip(t * 256).Take(256)).ToArray();
        var coarseMse = quantizer.MeanSquaredErrors(everyThird, grid);
        double coarse = grid[Array.IndexOf(coarseMse, coarseMse.Min())];
        var points = Enumerable.Range(0, 5).Select(i => coarse + (i - 2) * 0.075).ToArray();
        var fine = points.Select(p => p > 0 ? quantizer.MeanSquaredError(tiles, p) : double.PositiveInfinity).ToArray();
        int best = Array.IndexOf(fine, fine.Min());
        double expected = points[best] + (best is > 0 and < 4 ? 0.075 * GlobalScaleSearch.ParabolaOffset(fine[best - 1], fine[best], fine[best + 1]) : 0);

        Assert.That(GlobalScaleSearch.Search(quantizer, tiles).Scale, Is.EqualTo(Math.Max(expected, 0.01)));
    }

    [TestCase(new[] { 5.0, 3, 3, 3, 5 }, 1)]
    [TestCase(new[] { 5.0, 4, 3, 3, 3 }, 2)]
    [TestCase(new[] { 3.0, 3, 3, 3, 3 }, 0)]
    [TestCase(new[] { 9.0, 8, 7, 6, 5 }, 4)]
    [TestCase(new[] { 1.0, 2, 3, 4, 5 }, 0)]
    public void TheFineWalkBreaksTiesLikeTheFullScan(double[] values, int expected)
    {
        var asked = new HashSet<int>();
        Assert.That(GlobalScaleSearch.WalkDownhill(i => { asked.Add(i); return values[i]; }, values.Length, values.Length / 2), Is.EqualTo(expected));
        if (expected is > 0 and < 4)
            Assert.That(asked, Does.Contain(expected - 1).And.Contain(expected + 1), "the parabola's neighbours were read");
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
