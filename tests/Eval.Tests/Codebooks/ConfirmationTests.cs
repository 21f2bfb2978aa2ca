using Converter.Eval.Codebooks.Confirmation;
using Converter.Eval.Codebooks.Screening;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Tests.Codebooks;

/// <summary>A multiplier confirmation's plan (which conversions) and statistics (grouping, pairing by seed), without converting anything.</summary>
public sealed class ConfirmationTests
{
    private static readonly CodebookSpec Locked = CodebookSpec.Default(CodebookKind.Mcg);
    private static readonly CodebookSpec A = new(CodebookKind.Mcg, 0xFF7A83E5);
    private static readonly CodebookSpec B = new(CodebookKind.Mcg, 0xCAF6A435);

    [Test]
    public void VariantsAreSeedMajorWithTheLockedMultiplierFirstAndOnce()
    {
        var variants = ConfirmationPlan.Variants(CodebookKind.Mcg, [A.Multiplier, Locked.Multiplier, B.Multiplier, A.Multiplier], [1, 0, 1]);
        Assert.That(variants, Is.EqualTo(new[]
        {
            new ConfirmationVariant(Locked, 1), new ConfirmationVariant(A, 1), new ConfirmationVariant(B, 1),
            new ConfirmationVariant(Locked, 0), new ConfirmationVariant(A, 0), new ConfirmationVariant(B, 0),
        }));
        Assert.That(variants[0].IsLocked && !variants[1].IsLocked, Is.True);
        Assert.That(variants[1].FolderName(2), Is.EqualTo("mcg-0xFF7A83E5-2bpw-s1"));
        Assert.That(new ConfirmationVariant(Locked, 0).FolderName(2.25), Is.EqualTo("mcg-0xCBAC1FED-2.25bpw-s0"));
    }

    [Test]
    public void APlanNeedsACandidateASeedAndAFamilyWithAMultiplier()
    {
        Assert.Throws<ArgumentException>(() => ConfirmationPlan.Variants(CodebookKind.Mcg, [Locked.Multiplier], [0]));
        Assert.Throws<ArgumentException>(() => ConfirmationPlan.Variants(CodebookKind.Mcg, [A.Multiplier], []));
        Assert.Throws<ArgumentException>(() => ConfirmationPlan.Variants(CodebookKind.ThreeInst, [A.Multiplier], [0]));
        Assert.Throws<FormatException>(() => ConfirmationPlan.Variants(CodebookKind.Mcg, [0xFF7A83E4], [0]), "an even MCG multiplier");
    }

    [Test]
    public void TheTopOfARankingLeavesOutTheLockedMultiplier()
    {
        RankedScreenResult Ranked(int rank, CodebookSpec spec) => new(rank, -rank, new ScreenResult(spec.MultiplierHex, 1, 0, [], "cpu", 0));
        var ranked = new[] { Ranked(2, Locked), Ranked(3, B), Ranked(1, A) };
        Assert.That(ConfirmationPlan.TopOf(ranked, CodebookKind.Mcg, 2), Is.EqualTo(new[] { A.Multiplier, B.Multiplier }));
        Assert.That(ConfirmationPlan.TopOf(ranked, CodebookKind.Mcg, 1), Is.EqualTo(new[] { A.Multiplier }));
        Assert.That(ConfirmationPlan.TopOf(ranked, CodebookKind.Mcg, 9), Has.Count.EqualTo(2));
    }

    [Test]
    public void RowsPairEachSeedWithTheLockedConversionAtThatSeed()
    {
        // A is 10% better than locked at seed 0 and 30% better at seed 1: ratios 0.9 and 0.7 (mean 0.8), though its mean KL (0.46) over the locked mean (0.6) is 0.767.
        ConfirmationMeasurement M(CodebookSpec spec, int seed, double kl, double top1) =>
            new(new ConfirmationVariant(spec, seed), $"{spec.MultiplierHex}-{seed}", kl, top1, spec.IsDefaultMultiplier);
        var rows = ConfirmationStatistics.Summarize([M(A, 1, 0.56, 0.80), M(Locked, 0, 0.4, 0.90), M(A, 0, 0.36, 0.92), M(Locked, 1, 0.8, 0.78)]);

        Assert.That(rows.Select(r => (r.Multiplier, r.Locked, r.Exllamav3Runs)), Is.EqualTo(new[] { (Locked.MultiplierHex, true, true), (A.MultiplierHex, false, false) }));
        var locked = rows[0];
        Assert.That(locked.Seeds, Is.EqualTo(new[] { 0, 1 }));
        Assert.That((locked.KlRatio, locked.KlRatioLow, locked.KlRatioHigh), Is.EqualTo((1.0, (double?)null, (double?)null)));
        var a = rows[1];
        Assert.That(a.Seeds, Is.EqualTo(new[] { 0, 1 }));
        Assert.That(a.Kl.Mean, Is.EqualTo(0.46).Within(1e-12));
        Assert.That(a.Kl.StandardDeviation, Is.EqualTo(0.2 / Math.Sqrt(2)).Within(1e-12));
        Assert.That(a.Top1.Mean, Is.EqualTo(0.86).Within(1e-12));
        Assert.That(a.KlRatio, Is.EqualTo(0.8).Within(1e-12), "the mean of the per-seed ratios, not the ratio of the means");
        // Two seeds: t(1) = 12.706 times the standard error 0.1.
        Assert.That(a.KlRatioLow!.Value, Is.EqualTo(0.8 - 1.2706204736).Within(1e-9));
        Assert.That(a.KlRatioHigh!.Value, Is.EqualTo(0.8 + 1.2706204736).Within(1e-9));
    }

    [Test]
    public void OneSeedHasNoSpreadAndNoInterval()
    {
        var rows = ConfirmationStatistics.Summarize([
            new(new ConfirmationVariant(Locked, 0), "l", 0.5, 0.9, true), new(new ConfirmationVariant(A, 0), "a", 0.4, 0.91, false)]);
        Assert.That(rows[1].KlRatio, Is.EqualTo(0.8).Within(1e-12));
        Assert.That((rows[1].KlRatioLow, rows[1].KlRatioHigh), Is.EqualTo(((double?)null, (double?)null)));
        Assert.That(rows[1].Kl.StandardDeviation, Is.NaN);
    }

    [Test]
    public void AMeasurementWithoutItsLockedPartnerIsAnError()
    {
        var e = Assert.Throws<ArgumentException>(() => ConfirmationStatistics.Summarize([
            new(new ConfirmationVariant(Locked, 0), "l", 0.5, 0.9, true), new(new ConfirmationVariant(A, 1), "a", 0.4, 0.91, false)]));
        Assert.That(e!.Message, Does.Contain("seed 1"));
    }
}
