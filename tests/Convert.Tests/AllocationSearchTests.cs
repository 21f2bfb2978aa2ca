using System.Diagnostics;
using Converter.Conversion.Pipeline.Allocation;
using NUnit.Framework;

namespace Converter.Convert.Tests;

public class AllocationSearchTests
{
    /// <summary>Every assignment of candidates to units within the budget; the least total KL (brute force, the reference).</summary>
    private static double BestByEnumeration(IReadOnlyList<UnitCurve> units, long budget)
    {
        double best = double.PositiveInfinity;
        var at = new int[units.Count];
        while (true)
        {
            if (AllocationSearch.Cost(units, at) <= budget)
                best = Math.Min(best, AllocationSearch.Kl(units, at));
            int u = 0;
            while (u < units.Count && ++at[u] == units[u].Bits.Length)
                at[u++] = 0;
            if (u == units.Count)
                return best;
        }
    }

    /// <summary>Random units: weight counts, a few candidates of 1..8 and a KL falling with K at its own rate (never rising).</summary>
    private static List<UnitCurve> RandomUnits(Random random, int count, Func<Random, long> numel)
    {
        var units = new List<UnitCurve>();
        for (int u = 0; u < count; u++)
        {
            var bits = Enumerable.Range(1, 8).Where(_ => random.NextDouble() < 0.5).DefaultIfEmpty(3).ToArray();
            double scale = Math.Exp(3 * random.NextDouble()), rate = 0.5 + random.NextDouble();
            // A little noise, then made monotone as MeasuredAllocation does: the search is given non-increasing curves.
            var kl = bits.Select(k => scale * Math.Exp(-rate * k) * (1 + 0.3 * random.NextDouble())).ToArray();
            for (int i = 1; i < kl.Length; i++)
                kl[i] = Math.Min(kl[i], kl[i - 1]);
            units.Add(new UnitCurve(numel(random), bits, kl));
        }
        return units;
    }

    private static long Budget(IReadOnlyList<UnitCurve> units, double fraction)
    {
        long least = units.Sum(u => u.Numel * u.Bits[0]), most = units.Sum(u => u.Numel * u.Bits[^1]);
        return least + (long)(fraction * (most - least));
    }

    [Test]
    public void BeatsTheGreedyWhereAnEfficientSmallUpgradeBlocksALargerGain()
    {
        // A (28 weights) gains 0.2 for one more bit, 0.0071 per added bit; B (100 weights) gains 0.5, 0.005 per bit.
        // With 100 bits to spare the greedy raises A first, and then B no longer fits; the optimum raises B alone.
        UnitCurve[] units = [new(28, [2, 3], [1.0, 0.8]), new(100, [2, 3], [1.0, 0.5])];
        long budget = 2 * 128 + 100;
        var greedy = AllocationSearch.Greedy(units, budget);
        Assert.That(greedy, Is.EqualTo(new[] { 1, 0 }), "the situation this test is about");
        var best = AllocationSearch.Best(units, budget);
        Assert.That(best, Is.EqualTo(new[] { 0, 1 }));
        Assert.That(AllocationSearch.Kl(units, best), Is.EqualTo(1.5).Within(1e-15).And.LessThan(AllocationSearch.Kl(units, greedy)));
        Assert.That(AllocationSearch.Cost(units, best), Is.EqualTo(budget));
    }

    [Test]
    public void EqualsTheBruteForceOptimumAndNeverExceedsTheBudget([Range(0, 59)] int seed)
    {
        var random = new Random(seed);
        // Weight counts sharing a factor of 64, as real shapes do: the dynamic program's cells are exact.
        var units = RandomUnits(random, random.Next(1, 7), r => 64L * r.Next(1, 40));
        long budget = Budget(units, random.NextDouble());
        var best = AllocationSearch.Best(units, budget);
        Assert.That(AllocationSearch.Cost(units, best), Is.LessThanOrEqualTo(budget));
        Assert.That(AllocationSearch.Kl(units, best), Is.EqualTo(BestByEnumeration(units, budget)).Within(1e-12));
        Assert.That(AllocationSearch.Kl(units, best), Is.LessThanOrEqualTo(AllocationSearch.Kl(units, AllocationSearch.Greedy(units, budget))));
    }

    [Test]
    public void OnACoarseGridThePlanStillFitsAndIsNoWorseThanTheGreedy([Range(0, 19)] int seed)
    {
        var random = new Random(seed);
        // Coprime weight counts near 10⁶: the costs' common divisor is 1, so the spare bits span far more than MaxCells
        // cells and the dynamic program rounds each unit's cost up to a coarser cell.
        var units = RandomUnits(random, 6, r => 1_000_000 + r.Next(0, 1000) * 2 + 1);
        long budget = Budget(units, 0.2 + 0.6 * random.NextDouble());
        Assert.That(budget - units.Sum(u => u.Numel * u.Bits[0]), Is.GreaterThan(AllocationSearch.MaxCells), "the situation this test is about");
        var best = AllocationSearch.Best(units, budget);
        Assert.That(AllocationSearch.Cost(units, best), Is.LessThanOrEqualTo(budget));
        Assert.That(AllocationSearch.Kl(units, best), Is.LessThanOrEqualTo(AllocationSearch.Kl(units, AllocationSearch.Greedy(units, budget))));
        // Rounding six costs up by less than a cell each (about 10⁻⁴ of the spare bits) rarely changes the optimum.
        Assert.That(AllocationSearch.Kl(units, best), Is.EqualTo(BestByEnumeration(units, budget)).Within(1e-3 * AllocationSearch.Kl(units, best)));
    }

    [Test]
    public void ASmallestCandidateAboveTheBudgetIsRefused()
    {
        UnitCurve[] units = [new(100, [3, 4], [0.1, 0.01])];
        Assert.Throws<ArgumentException>(() => AllocationSearch.Best(units, 299));
        Assert.That(AllocationSearch.Best(units, 300), Is.EqualTo(new[] { 0 }));
    }

    /// <summary>
    /// A llama-3-70b's shapes: 80 layers of q, k, v, o, gate, up and down as units, K = 2..7, at 2.5 to 6 bpw.
    /// Prints the time of each allocation (the plan is made once per convert; it should take well under a second).
    /// </summary>
    [Test]
    public void ASeventyBillionParameterModelIsAllocatedQuickly()
    {
        long[] shapes = [8192L * 8192, 1024L * 8192, 1024L * 8192, 8192L * 8192, 28672L * 8192, 28672L * 8192, 8192L * 28672];
        var random = new Random(0);
        int[] candidates = [2, 3, 4, 5, 6, 7];
        var units = Enumerable.Range(0, 80 * shapes.Length).Select(u =>
        {
            double scale = Math.Exp(2 * random.NextDouble());
            return new UnitCurve(shapes[u % shapes.Length], candidates, candidates.Select(k => scale * Math.Pow(2, -2 * k)).ToArray());
        }).ToList();
        long total = units.Sum(u => u.Numel);
        foreach (double bpw in new[] { 2.5, 4.0, 6.0 })
        {
            long budget = (long)(bpw * total);
            var clock = Stopwatch.StartNew();
            var best = AllocationSearch.Best(units, budget);
            clock.Stop();
            TestContext.Out.WriteLine($"{units.Count} units × {candidates.Length} candidates at {bpw} bpw: {clock.Elapsed.TotalMilliseconds:F0} ms");
            Assert.That(AllocationSearch.Cost(units, best), Is.LessThanOrEqualTo(budget));
            Assert.That(AllocationSearch.Kl(units, best), Is.LessThanOrEqualTo(AllocationSearch.Kl(units, AllocationSearch.Greedy(units, budget))));
        }
    }
}
