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
}
