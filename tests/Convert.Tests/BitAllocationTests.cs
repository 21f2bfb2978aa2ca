using Converter.Cli.Pipeline;
using NUnit.Framework;

namespace Converter.Convert.Tests;

public class BitAllocationTests
{
    private static List<AllocationTarget> TwoLayers() =>
    [
        new("l0.q", 0, "attn.qkv", 2, 100), new("l0.k", 0, "attn.qkv", 2, 50), new("l0.o", 0, "attn.o", 2, 100),
        new("l0.up", 0, "mlp.gu", 1, 300), new("l0.down", 0, "mlp.d", 1, 300),
        new("l1.q", 1, "attn.qkv", 2, 100), new("l1.k", 1, "attn.qkv", 2, 50), new("l1.o", 1, "attn.o", 2, 100),
        new("l1.up", 1, "mlp.gu", 1, 300), new("l1.down", 1, "mlp.d", 1, 300),
    ];

    [TestCase(2.0)]
    [TestCase(4.0)]
    [TestCase(8.0)]
    public void IntegerTargetGivesThatWidthEverywhere(double bits)
    {
        var result = BitAllocation.Allocate(TwoLayers(), bits);
        Assert.That(result.Values, Is.All.EqualTo((int)bits));
    }

    [Test]
    public void FractionalTargetStaysWithinBudgetAndBumpsAttentionFirst()
    {
        var targets = TwoLayers();
        var result = BitAllocation.Allocate(targets, 3.2);
        double average = BitAllocation.AverageBits(targets, result);
        Assert.That(average, Is.InRange(3.0, 3.2));
        // Budget 0.2·1700 = 340 extra bits: both layers' attention groups (150 + 100 each = 500) cannot all fit;
        // the order is priority then layer, so layer 0's qkv (150) and o (100) go first, then layer 1's qkv does not fit (250+150 > 340)…
        Assert.That(result["l0.q"], Is.EqualTo(4));
        Assert.That(result["l0.o"], Is.EqualTo(4));
        Assert.That(result["l0.up"], Is.EqualTo(3), "MLP groups come after attention");
        // …but layer 1's o (100 more would be 350) does not fit either, so everything else stays at 3.
        Assert.That(result.Where(kv => kv.Key.StartsWith("l1.", StringComparison.Ordinal)).Select(kv => kv.Value), Is.All.EqualTo(3));
    }

    [Test]
    public void NeverExceedsEightBits()
    {
        var result = BitAllocation.Allocate(TwoLayers(), 7.9);
        Assert.That(result.Values, Is.All.InRange(7, 8));
    }
}
