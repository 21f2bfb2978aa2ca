using Converter.Eval.Metrics;

namespace Converter.Eval.Tests.Metrics;

/// <summary>torch.median and torch.quantile semantics (exllamav3 prints these).</summary>
public class TokenQuantilesTests
{
    [Test]
    public void MedianIsTheLowerMiddleValue()
    {
        Assert.That(TokenQuantiles.Median([5, 1, 3]), Is.EqualTo(3));
        Assert.That(TokenQuantiles.Median([4, 1, 3, 2]), Is.EqualTo(2), "torch.median does not average the two middle values");
        Assert.That(TokenQuantiles.Median([7]), Is.EqualTo(7));
        Assert.That(TokenQuantiles.Median([]), Is.NaN);
    }

    [Test]
    public void QuantileInterpolatesLinearly()
    {
        double[] tenValues = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
        // Position 0.9·(10−1) = 8.1 between the sorted values 9 and 10.
        Assert.That(TokenQuantiles.Quantile(tenValues, 0.9), Is.EqualTo(9.1).Within(1e-12));
        Assert.That(TokenQuantiles.Quantile(tenValues, 0.5), Is.EqualTo(5.5).Within(1e-12));
        Assert.That(TokenQuantiles.Quantile(tenValues, 0), Is.EqualTo(1));
        Assert.That(TokenQuantiles.Quantile(tenValues, 1), Is.EqualTo(10));
        Assert.That(TokenQuantiles.Quantile([3], 0.9), Is.EqualTo(3));
        Assert.That(() => TokenQuantiles.Quantile(tenValues, 1.5), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
