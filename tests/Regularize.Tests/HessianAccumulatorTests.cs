using Converter.Regularize.Hessian;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

/// <summary>The path a GPU forward takes into the Hessian sum: rows it verified and adds itself.</summary>
public sealed class HessianAccumulatorTests
{
    [Test]
    public void VerifiedRowsAreCountedAndSummedLikeAddedOnes()
    {
        const int k = 8, tokens = 5;
        var x = Enumerable.Range(0, tokens * k).Select(i => MathF.Sin(i * 0.7f)).ToArray();
        var added = new HessianAccumulator(k);
        added.Add(x, tokens);
        var verified = new HessianAccumulator(k);
        verified.AddVerified(tokens, gram => gram.Add(x, tokens));
        verified.AddVerified(0, _ => Assert.Fail("no rows, no call"));

        Assert.That(verified.Count, Is.EqualTo(added.Count));
        Assert.That(verified.DroppedRows, Is.Zero);
        Assert.That(verified.Sum.ToArray(), Is.EqualTo(added.Sum.ToArray()));
        Assert.Throws<InvalidOperationException>(() => verified.AddVerified(tokens, gram => gram.Add(x, tokens)), "the sum was read");
    }

    [Test]
    public void TheMeanIsTheSumOverTheCountPaddedAndSpendsTheAccumulator()
    {
        const int k = 6, tokens = 7, padded = 16;
        var x = Enumerable.Range(0, tokens * k).Select(i => MathF.Cos(i * 0.3f)).ToArray();
        var reference = new HessianAccumulator(k);
        reference.Add(x, tokens);
        var sum = reference.Sum.ToArray();
        using var accumulator = new HessianAccumulator(k);
        accumulator.Add(x, tokens);

        var mean = accumulator.Mean(padded);

        for (int i = 0; i < padded; i++)
        {
            for (int j = 0; j < padded; j++)
            {
                float expected = i < k && j < k ? (float)(sum[i * k + j] / tokens) : 0f;
                Assert.That(mean.Values[i * padded + j], Is.EqualTo(expected), $"({i}, {j})");
            }
        }
        Assert.That(mean.Diagonal, Is.EqualTo(Enumerable.Range(0, k).Select(i => sum[i * k + i] / tokens)));
        Assert.Throws<InvalidOperationException>(() => accumulator.Add(x, tokens), "no rows after the mean");
        Assert.Throws<InvalidOperationException>(() => accumulator.Mean(padded), "read once");
        Assert.Throws<InvalidOperationException>(() => _ = accumulator.Sum, "its memory is gone");
    }
}
