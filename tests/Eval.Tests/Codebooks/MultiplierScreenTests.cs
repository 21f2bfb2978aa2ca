using Converter.Eval.Codebooks.Screening;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Viterbi;

namespace Converter.Eval.Tests.Codebooks;

public sealed class MultiplierScreenTests
{
    private static readonly ScreenSettings Small = new(CodebookKind.Mcg, [3, 8], Tiles: 16, Seed: 5);

    [Test]
    public void TheLockedMultiplierAgainstItselfDiffersByExactlyZero()
    {
        var screen = new MultiplierScreen(Small, new CpuTableEncoders());
        var self = screen.Measure(0xCBAC1FED);
        Assert.That(self.Multiplier, Is.EqualTo("0xCBAC1FED"));
        foreach (var b in self.PerBits)
        {
            Assert.That((b.Difference, b.DifferenceLow, b.DifferenceHigh, b.Significant), Is.EqualTo((0.0, 0.0, 0.0, false)), $"K={b.Bits}");
            Assert.That(b.Mse, Is.EqualTo(b.ReferenceMse));
            Assert.That(b.MseLow, Is.LessThan(b.Mse));
            Assert.That(b.MseHigh, Is.GreaterThan(b.Mse));
            Assert.That(b.Mse, Is.GreaterThan(b.RdBound), "no code beats the rate-distortion bound");
        }
        var table = CodebookTable.Build(CodebookSpec.Default(CodebookKind.Mcg));
        Assert.That((self.Rms, self.Mean), Is.EqualTo((table.Rms, table.Mean)));
    }

    [Test]
    public void ACandidateIsPairedWithTheReferenceTileByTile()
    {
        var screen = new MultiplierScreen(Small, new CpuTableEncoders());
        var r = screen.Measure(0xFF7A83E5, out var tileMse);
        foreach (var bits in Small.Bits)
        {
            var reference = screen.ReferenceTileMse(bits);
            var expected = MeanInterval.Paired(tileMse[bits], reference.ToArray());
            var b = r.At(bits);
            Assert.That((b.Difference, b.DifferenceLow, b.DifferenceHigh), Is.EqualTo((expected.Mean, expected.Low, expected.High)));
            Assert.That(b.Mse - b.ReferenceMse, Is.EqualTo(b.Difference).Within(1e-12));
            // The same tiles: the paired interval is far narrower than the two MSEs' own intervals would allow.
            Assert.That(b.DifferenceHigh - b.DifferenceLow, Is.LessThan(b.MseHigh - b.MseLow));
        }
        // A different multiplier decodes to a different table, so its MSE differs at some K.
        Assert.That(r.PerBits.Any(b => b.Difference != 0), Is.True);
    }

    [Test]
    public void ThreeInstCannotBeScreenedAndTooFewTilesAreRefused()
    {
        Assert.Throws<ArgumentException>(() => new ScreenSettings(CodebookKind.ThreeInst, [2], 16, 0).Validate());
        Assert.Throws<ArgumentException>(() => new ScreenSettings(CodebookKind.Mcg, [2], 4, 0).Validate());
    }

    private static ScreenResult Fake(string multiplier, params (int Bits, double Relative)[] perBits) =>
        new(multiplier, 1, 0, perBits.Select(p => new ScreenBitsResult(p.Bits, 0.1 * (1 + p.Relative), 0, 1, 0.0625, 0.1, 0.1 * p.Relative, -1, 1, false)).ToList(), "cpu", 0);

    [Test]
    public void RankingIsByRelativeDifferenceThenMultiplierWhateverTheInputOrder()
    {
        var results = new[]
        {
            Fake("0x00000003", (2, -0.01), (3, +0.02)),
            Fake("0x00000001", (2, -0.01), (3, +0.02)),
            Fake("0x00000005", (2, +0.00), (3, -0.03)),
            Fake("0x00000007", (2, -0.02), (3, +0.00)),
        };
        for (int seed = 0; seed < 5; seed++)
        {
            var shuffled = results.OrderBy(_ => new Random(seed).Next()).ToArray();
            new Random(seed).Shuffle(shuffled);
            Assert.That(ScreenRanking.Rank(shuffled, 2).Select(r => r.Result.Multiplier),
                Is.EqualTo(new[] { "0x00000007", "0x00000001", "0x00000003", "0x00000005" }), "by K=2, ties to the smaller multiplier");
            // Mean over K: 5 → -0.015, 7 → -0.01, 1 and 3 → +0.005.
            var byMean = ScreenRanking.Rank(shuffled, null);
            Assert.That(byMean.Select(r => r.Result.Multiplier), Is.EqualTo(new[] { "0x00000005", "0x00000007", "0x00000001", "0x00000003" }));
            Assert.That(byMean.Select(r => r.Rank), Is.EqualTo(new[] { 1, 2, 3, 4 }));
            Assert.That(byMean[0].Score, Is.EqualTo(-0.015).Within(1e-12));
        }
    }
}
