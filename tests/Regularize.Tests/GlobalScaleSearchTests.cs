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
        Assert.That(result.Evaluations.Count, Is.EqualTo(15));
    }
}
