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

    [Test]
    public void OnTheHostTheMeanStaysWithTheCallerAndNothingIsLeftResident()
    {
        const int k = 6, tokens = 7;
        var x = Enumerable.Range(0, tokens * k).Select(i => MathF.Cos(i * 0.3f)).ToArray();
        using var accumulator = new HessianAccumulator(k);
        accumulator.Add(x, tokens);
        Assert.That(accumulator.MeanInPlace(16), Is.Null, "the CPU keeps no mean anywhere else");
        Assert.That(accumulator.Mean(16).Values, Has.Length.EqualTo(256), "and MeanInPlace spent nothing");

        using var again = new HessianAccumulator(k);
        again.Add(x, tokens);
        using var hessian = GroupHessian.Finalize(again, 16, GroupHessian.DefaultSigma, new Random(1), onDevice: true, users: 1);
        Assert.That(hessian.Resident, Is.Null);
        Assert.That(hessian.TakeResident(), Is.Null);
        Assert.That(hessian.Damped, Is.Not.Null);
    }

    [TestCase(6, 16)]
    [TestCase(128, 128)]
    public void TheDampedDiagonalIsTheDampedHessiansDiagonalWithoutReadingIt(int k, int padded)
    {
        var rng = new Random(k);
        int tokens = 3 * k;
        var x = Enumerable.Range(0, tokens * k).Select(_ => (float)(rng.NextDouble() * 2 - 1) * 3).ToArray();
        using var accumulator = new HessianAccumulator(k);
        accumulator.Add(x, tokens);
        using var hessian = GroupHessian.Finalize(accumulator, padded, GroupHessian.DefaultSigma, new Random(2));
        var expected = Enumerable.Range(0, padded).Select(i => hessian.Damped![i * padded + i]).ToArray();
        Assert.That(hessian.Diagonal(), Is.EqualTo(expected), "to the bit, padded channels (the damping alone) included");
    }
}
