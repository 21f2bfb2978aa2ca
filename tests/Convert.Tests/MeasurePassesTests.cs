using Converter.Conversion.Pipeline.Allocation;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>Splitting `trellis measure` into passes whose perturbed states fit a memory budget.</summary>
public class MeasurePassesTests
{
    // Embedding, 4 decoder layers of 7 units × 5 K, final norm, head.
    private static readonly int[] Llama4Layers = [0, 35, 35, 35, 35, 0, 0];

    [Test]
    public void EverythingThatFitsIsOnePass() =>
        Assert.That(MeasurePasses.Plan(Llama4Layers, 64, 140 * 64), Is.EqualTo(new[] { new MeasurePass(0, 6) }));

    [Test]
    public void PassesAreContiguousCoverEveryModuleAndStayWithinTheBudget()
    {
        var passes = MeasurePasses.Plan(Llama4Layers, 64, 70 * 64);
        // The embedding joins the first pass, the norm and head the last.
        Assert.That(passes, Is.EqualTo(new[] { new MeasurePass(0, 2), new MeasurePass(3, 6) }));
        Assert.That(MeasurePasses.PeakBytes(passes, Llama4Layers, 64), Is.EqualTo(70 * 64));

        var one = MeasurePasses.Plan(Llama4Layers, 64, 69 * 64);
        Assert.That(one, Is.EqualTo(new[] { new MeasurePass(0, 1), new MeasurePass(2, 2), new MeasurePass(3, 3), new MeasurePass(4, 6) }));
    }

    [Test]
    public void AModuleWhoseStatesAloneDoNotFitIsAPassOfItsOwn()
    {
        var passes = MeasurePasses.Plan(Llama4Layers, 64, 10);
        Assert.That(passes.Select(p => (p.First, p.Last)), Is.EqualTo(new[] { (0, 1), (2, 2), (3, 3), (4, 6) }));
        Assert.That(MeasurePasses.PeakBytes(passes, Llama4Layers, 64), Is.EqualTo(35 * 64));
    }

    [Test]
    public void AModelWithNothingToMeasureIsOnePass() =>
        Assert.That(MeasurePasses.Plan([0, 0, 0], 64, 1), Is.EqualTo(new[] { new MeasurePass(0, 2) }));

    [Test]
    public void BudgetAndSizesMustBePositive()
    {
        Assert.That(() => MeasurePasses.Plan(Llama4Layers, 0, 1), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => MeasurePasses.Plan(Llama4Layers, 1, 0), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => MeasurePasses.Plan([0, -1], 1, 1), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
