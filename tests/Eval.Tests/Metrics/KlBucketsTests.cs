using Converter.Eval.Metrics;

namespace Converter.Eval.Tests.Metrics;

public class KlBucketsTests
{
    [TestCase(0.0, 0)]
    [TestCase(0.2499, 0)]
    [TestCase(0.25, 1)]
    [TestCase(0.5, 2)]
    [TestCase(0.7499, 2)]
    [TestCase(0.75, 3)]
    [TestCase(0.9499, 3)]
    [TestCase(0.95, 4)]
    [TestCase(1.0, 4)]
    [TestCase(1.0000001, 4)]
    public void BucketEdgesAreClosedBelowAndTheLastIncludesOne(double p, int bucket) =>
        Assert.That(KlBuckets.BucketOf(p), Is.EqualTo(bucket));

    [Test]
    public void BucketsHoldShareMeanAndMedian()
    {
        double[] kl = [0.1, 0.3, 0.2, 0.01, 0.4];
        double[] topProb = [0.1, 0.2, 0.3, 0.99, 0.6];
        var buckets = KlBuckets.Compute(kl, topProb);
        Assert.That(buckets.Select(b => (b.Lo, b.Hi)), Is.EqualTo(new[] { (0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 0.95), (0.95, 1.0) }));
        Assert.That(buckets.Select(b => b.Tokens), Is.EqualTo(new long[] { 2, 1, 1, 0, 1 }));
        Assert.That(buckets[0].Fraction, Is.EqualTo(0.4));
        Assert.That(buckets[0].KlMean, Is.EqualTo(0.2).Within(1e-12));
        Assert.That(buckets[0].KlMedian, Is.EqualTo(0.1), "lower median of {0.1, 0.3}");
        Assert.That(buckets[3].KlMean, Is.Null);
        Assert.That(buckets[4].KlMean, Is.EqualTo(0.01));
    }
}
