using Converter.Conversion.Pipeline;
using Converter.Eval.Metrics;
using Converter.Models.Forward;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// The head's error after quantizing (<see cref="HeadComparison"/>) on the host pass: the metrics of the rows asked
/// for, in their order, against the logits of a soft-capped, scaled head worked out by hand, for the original weight
/// on the same states and for the original model's stream.
/// </summary>
public sealed class HeadComparisonTests
{
    [Test]
    public void TheMetricsAreThoseOfTheLogitsWorkedOutByHand()
    {
        var c = HeadComparisonCase.Create(seed: 1);
        int[] rows = [5, 0, 3, 6, 1];
        var (diff, againstOriginal) = (new ModuleDiff(), new ModuleDiff());
        HeadComparison.Add(HostForwardPass.Instance, c.Head, c.Original, new CalibrationState(HeadComparisonCase.TokenRows, c.States, []),
            new CalibrationState(HeadComparisonCase.TokenRows, c.OriginalStates, []), rows, diff, againstOriginal);
        var (expected, expectedAgainstOriginal) = c.Expected(rows);
        HeadComparisonCase.AssertClose(diff, expected);
        HeadComparisonCase.AssertClose(againstOriginal, expectedAgainstOriginal);
        Assert.That((diff.Rows, againstOriginal.Rows), Is.EqualTo((5, 5)));
        Assert.That(againstOriginal.RfnErr, Is.GreaterThan(diff.RfnErr * 1.05), "the original stream's states drifted: its logits are further away");
    }

    [Test]
    public void WithoutTheOriginalStreamOnlyTheReferenceIsCompared()
    {
        var c = HeadComparisonCase.Create(seed: 2);
        var state = new CalibrationState(HeadComparisonCase.TokenRows, c.States, []);
        var diff = new ModuleDiff();
        HeadComparison.Add(HostForwardPass.Instance, c.Head, c.Original, state, null, [2, 4], diff, null);
        HeadComparisonCase.AssertClose(diff, c.Expected([2, 4]).Diff);
        Assert.That(() => HeadComparison.Add(HostForwardPass.Instance, c.Head, c.Original, state, null, [2], diff, new ModuleDiff()),
            Throws.ArgumentException, "a diff against an original stream that is not given");
    }

    [TestCase(512, 4)]
    [TestCase(1000, 2)]
    [TestCase(2048, 1)]
    [TestCase(4096, 1)]
    public void APassComparesHalfAForwardChunk(int tokens, int rows) => Assert.That(HeadComparison.RowsPerPass(tokens), Is.EqualTo(rows));
}
