using Converter.Conversion.Pipeline;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>Spreading a module's linears over several devices by speed (issue 16).</summary>
public class LinearPlacementTests
{
    // A llama-3-8b layer's seven linears, largest first as ModuleConverter starts them (padded weights).
    private static readonly double[] Llama8bLayer = [14336.0 * 4096, 4096.0 * 14336, 4096.0 * 14336, 4096.0 * 4096, 4096.0 * 4096, 4096.0 * 1024, 4096.0 * 1024];

    [Test]
    public void OneDeviceTakesEverything() =>
        Assert.That(LinearPlacement.Assign(Llama8bLayer, [3.0]), Is.All.EqualTo(0));

    [Test]
    public void EqualDevicesAlternateTheLargestAndBalanceTheRest()
    {
        var placed = LinearPlacement.Assign(Llama8bLayer, [1.0, 1.0]);
        // down, gate, up: 0, 1, then whichever is free first (tie: the lower); the attention linears fill the other.
        Assert.That(placed, Is.EqualTo(new[] { 0, 1, 0, 1, 1, 1, 1 }));
        Assert.That(Finish(placed, [1.0, 1.0]), Is.LessThanOrEqualTo(4.0 / 3 * BestOfTwo(Llama8bLayer)));
    }

    [Test]
    public void AFasterDeviceTakesMoreWork()
    {
        double[] work = Enumerable.Repeat(1.0, 12).ToArray();
        var placed = LinearPlacement.Assign(work, [3.0, 1.0]);
        Assert.That(placed.Count(d => d == 0), Is.EqualTo(9));
        Assert.That(placed.Count(d => d == 1), Is.EqualTo(3));
    }

    [Test]
    public void ThePlacementIsAFunctionOfItsInputs()
    {
        double[] speeds = [2.5, 1.7, 2.5];
        Assert.That(LinearPlacement.Assign(Llama8bLayer, speeds), Is.EqualTo(LinearPlacement.Assign(Llama8bLayer, speeds)));
        Assert.That(LinearPlacement.Assign(Llama8bLayer, speeds).Distinct().Count(), Is.EqualTo(3));
    }

    [Test]
    public void StagesThatWholeLinearsLeaveUnbalancedShareTheirColumns()
    {
        double[] two = [1.0, 1.0];
        // The sequential capture's stages of an 8B layer: o_proj and down_proj alone, q beside k and v, gate with up.
        Assert.That(LinearPlacement.SplitColumns([Llama8bLayer[3]], two), Is.True);
        Assert.That(LinearPlacement.SplitColumns([Llama8bLayer[0]], two), Is.True);
        Assert.That(LinearPlacement.SplitColumns([Llama8bLayer[3], Llama8bLayer[5], Llama8bLayer[6]], two), Is.True, "q alone takes 2/3 of the stage");
        Assert.That(LinearPlacement.SplitColumns([Llama8bLayer[1], Llama8bLayer[2]], two), Is.False);
        Assert.That(LinearPlacement.SplitColumns([Llama8bLayer[1], Llama8bLayer[2]], [1.0, 0.7]), Is.True, "equal halves on unequal devices");
        // The whole block (--fast) finishes 1.077x the ideal whole; a module of 128 experts is balanced whole.
        Assert.That(LinearPlacement.SplitColumns(Llama8bLayer, two), Is.False);
        Assert.That(LinearPlacement.SplitColumns(Enumerable.Repeat(1.0, 128).ToArray(), [1.0, 1.0, 1.0]), Is.False);
        // One device has nothing to share with.
        Assert.That(LinearPlacement.SplitColumns([Llama8bLayer[0]], [1.0]), Is.False);
    }

    [TestCase(0.0)]
    [TestCase(-1.0)]
    [TestCase(double.NaN)]
    [TestCase(double.PositiveInfinity)]
    public void SpeedsMustBePositiveAndFinite(double bad) =>
        Assert.That(() => LinearPlacement.Assign(Llama8bLayer, [1.0, bad]), Throws.ArgumentException);

    /// <summary>The time the slowest device finishes.</summary>
    private static double Finish(int[] placed, double[] speeds) =>
        speeds.Select((s, d) => placed.Select((p, i) => p == d ? Llama8bLayer[i] / s : 0).Sum()).Max();

    /// <summary>The best split of the work over two equal devices, by brute force.</summary>
    private static double BestOfTwo(double[] work)
    {
        double best = double.PositiveInfinity;
        for (int mask = 0; mask < 1 << work.Length; mask++)
        {
            double a = 0, b = 0;
            for (int i = 0; i < work.Length; i++)
                if ((mask >> i & 1) == 1) a += work[i]; else b += work[i];
            best = Math.Min(best, Math.Max(a, b));
        }
        return best;
    }
}
