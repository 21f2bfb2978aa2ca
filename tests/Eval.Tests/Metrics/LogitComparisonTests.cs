using Converter.Eval.Metrics;

namespace Converter.Eval.Tests.Metrics;

/// <summary>The logit-layer figures of docs/exl3-format.md §6.1 on a three-token row worked out by hand.</summary>
public class LogitComparisonTests
{
    // Width 4. Row ids (0, 2, 1): position 0 predicts id 2, position 1 predicts id 1, position 2 predicts nothing.
    private static readonly int[] Ids = [0, 2, 1];

    // Reference B: position 0 ranks 2 > 1 > 0 > 3, position 1 ranks 1 > 3 > 0 > 2, position 2 ranks 0 > 1 > 2 > 3.
    private static readonly float[] B = [2f, 3f, 4f, 1f, /**/ 2f, 4f, 1f, 3f, /**/ 4f, 3f, 2f, 1f];

    // Test A: position 0 ranks 2 > 0 > 1 > 3 (top-1 agrees, top-2 does not), position 1 ranks 3 > 1 > 0 > 2 (disagrees at 1).
    private static readonly float[] A = [3f, 2f, 4f, 1f, /**/ 2f, 3f, 1f, 4f, /**/ 4f, 3f, 2f, 1f];

    [Test]
    public void LabelInTopKAndAgreementCountPredictedPositions()
    {
        var c = new LogitComparison(topK: 3, vocabulary: 4);
        c.AddRow(A, B, 4, Ids);
        var r = c.Result();
        Assert.That((r.Tokens, r.Predicted), Is.EqualTo((3L, 2L)));
        // B: target 2 is B's top-1 at position 0; target 1 is B's top-1 at position 1 → 1, 1, 1.
        Assert.That(r.LabelInTopkB, Is.EqualTo(new[] { 1.0, 1.0, 1.0 }));
        // A: target 2 top-1 at position 0; target 1 second at position 1 → 0.5, 1, 1.
        Assert.That(r.LabelInTopkA, Is.EqualTo(new[] { 0.5, 1.0, 1.0 }));
        // Position 0 agrees on top-1 only ([2] vs [2], [2,0] vs [2,1]); position 1 never ([3] vs [1]).
        Assert.That(r.TopkAgreement, Is.EqualTo(new[] { 0.5, 0.0, 0.0 }));
    }

    [Test]
    public void KlCoversAllPositionsAndPerplexitiesAreEachModels()
    {
        var c = new LogitComparison(topK: 2, vocabulary: 4);
        c.AddRow(A, B, 4, Ids);
        var r = c.Result();
        var kl = Enumerable.Range(0, 3).Select(t => LogitMath.Compare(A.AsSpan(4 * t, 4), B.AsSpan(4 * t, 4))).ToList();
        Assert.That(kl[2].KlAb, Is.EqualTo(0), "identical last position");
        Assert.That(r.KlAb, Is.EqualTo(kl.Average(k => k.KlAb)).Within(1e-15));
        Assert.That(r.KlBa, Is.EqualTo(kl.Average(k => k.KlBa)).Within(1e-15));
        Assert.That(r.KlAbMedian, Is.EqualTo(kl.Select(k => k.KlAb).Order().ElementAt(1)));
        Assert.That(r.KlBuckets.Sum(b => b.Tokens), Is.EqualTo(3));

        double LogP(float[] x, int t, int id) => LogitMath.LogProbability(x.AsSpan(4 * t, 4), id);
        Assert.That(r.PplA, Is.EqualTo(Math.Exp(-(LogP(A, 0, 2) + LogP(A, 1, 1)) / 2)).Within(1e-12));
        Assert.That(r.PplB, Is.EqualTo(Math.Exp(-(LogP(B, 0, 2) + LogP(B, 1, 1)) / 2)).Within(1e-12));
    }

    [Test]
    public void AModelAgainstItselfHasZeroKlFullAgreementAndEqualPerplexity()
    {
        var c = new LogitComparison(topK: 4, vocabulary: 4);
        c.AddRow(B, B, 4, Ids);
        var r = c.Result();
        Assert.That((r.KlAb, r.KlBa, r.KlAbMedian, r.KlAbP90), Is.EqualTo((0.0, 0.0, 0.0, 0.0)));
        Assert.That(r.TopkAgreement, Is.All.EqualTo(1.0));
        Assert.That(r.PplA, Is.EqualTo(r.PplB));
        Assert.That(r.LabelInTopkA, Is.EqualTo(r.LabelInTopkB));
    }

    [Test]
    public void MergingRowsEqualsAddingThemToOneAccumulator()
    {
        var whole = new LogitComparison(2, 4);
        whole.AddRow(A, B, 4, Ids);
        whole.AddRow(B, A, 4, [3, 0, 0]);
        var first = new LogitComparison(2, 4);
        first.AddRow(A, B, 4, Ids);
        var second = new LogitComparison(2, 4);
        second.AddRow(B, A, 4, [3, 0, 0]);
        first.Merge(second);
        var (x, y) = (whole.Result(), first.Result());
        Assert.That((y.PplA, y.PplB, y.KlAb, y.KlBa, y.KlAbMedian, y.KlAbP90), Is.EqualTo((x.PplA, x.PplB, x.KlAb, x.KlBa, x.KlAbMedian, x.KlAbP90)));
        Assert.That(y.TopkAgreement, Is.EqualTo(x.TopkAgreement));
        Assert.That(y.LabelInTopkA, Is.EqualTo(x.LabelInTopkA));
        Assert.That(y.KlBuckets, Is.EqualTo(x.KlBuckets));
    }

    [Test]
    public void RejectsMismatchedShapes()
    {
        var c = new LogitComparison(2, 4);
        Assert.That(() => c.AddRow(A, B.AsSpan(0, 8).ToArray(), 4, Ids), Throws.ArgumentException);
        Assert.That(() => new LogitComparison(2, 5).AddRow(A, B, 4, Ids), Throws.ArgumentException.With.Message.Contains("vocabulary"));
    }
}
