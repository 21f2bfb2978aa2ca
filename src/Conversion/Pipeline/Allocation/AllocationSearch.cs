namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>A unit as the search sees it: its weight count and, per candidate K (ascending), its KL (non-increasing).</summary>
public sealed record UnitCurve(long Numel, int[] Bits, double[] Kl)
{
    /// <summary>Bits that choice <paramref name="i"/> adds over the smallest candidate.</summary>
    public long Extra(int i) => Numel * (Bits[i] - Bits[0]);
}

/// <summary>
/// One candidate per unit minimizing the summed KL with Σ numel·K within a budget of bits: a multiple-choice
/// knapsack. Two searches, the better kept: a dynamic program over the bits added above every unit's smallest
/// candidate, exact when those bits fit <see cref="MaxCells"/> cells of their greatest common divisor (a llama-3-70b
/// needs 8,160 cells per added bit: exact up to 8 bpw from K = 1), else on a coarser grid with each unit's cost
/// rounded up, so that its plan always fits, then topped up by the greedy's upgrades; and the greedy on marginal
/// efficiency alone (the allocator before: on tiny-llama at 3.5 bpw it predicted 0.03273 where the optimum is
/// 0.03215). Deterministic: ties keep the smaller K, and the dynamic program's plan wins a tie with the greedy's.
/// </summary>
public static class AllocationSearch
{
    /// <summary>
    /// Budget cells of the dynamic program at most: its time is units × cells × candidates and its choice table units ×
    /// cells bytes. A llama-3-70b's 560 units at K = 2..7 took 65, 113 and 212 ms at 2.5, 4 and 6 bpw (16,320 cells
    /// and 9 MB at 4 bpw) on the 2-core dev machine (AllocationSearchTests).
    /// </summary>
    public const int MaxCells = 1 << 16;

    /// <returns>The chosen index into each unit's candidates.</returns>
    /// <exception cref="ArgumentException">Even every unit's smallest candidate exceeds <paramref name="budget"/>.</exception>
    public static int[] Best(IReadOnlyList<UnitCurve> units, long budget)
    {
        var greedy = Greedy(units, budget);
        // Greedy has checked that the smallest candidates fit.
        var exact = Upgrade(units, Optimum(units, budget), budget);
        return Kl(units, exact) <= Kl(units, greedy) ? exact : greedy;
    }

    /// <summary>From every unit at its smallest candidate, the upgrades with the largest KL decrease per added bit that still fit.</summary>
    public static int[] Greedy(IReadOnlyList<UnitCurve> units, long budget) => Upgrade(units, new int[units.Count], budget);

    public static double Kl(IReadOnlyList<UnitCurve> units, int[] at) => units.Select((u, i) => u.Kl[at[i]]).Sum();

    public static long Cost(IReadOnlyList<UnitCurve> units, int[] at) => units.Select((u, i) => u.Numel * u.Bits[at[i]]).Sum();

    /// <summary>Raises units from <paramref name="start"/> by the upgrade with the largest KL decrease per added bit that still fits, until none fits.</summary>
    private static int[] Upgrade(IReadOnlyList<UnitCurve> units, int[] start, long budget)
    {
        var at = (int[])start.Clone();
        long used = Cost(units, at);
        RequireFits(units, budget);
        while (true)
        {
            int bestUnit = -1, bestIndex = -1;
            double bestGain = 0;
            for (int u = 0; u < units.Count; u++)
            {
                var c = units[u];
                for (int i = at[u] + 1; i < c.Bits.Length; i++)
                {
                    long extra = c.Extra(i) - c.Extra(at[u]);
                    if (used + extra > budget)
                        break;
                    double gain = (c.Kl[at[u]] - c.Kl[i]) / extra;
                    if (gain > bestGain)
                        (bestGain, bestUnit, bestIndex) = (gain, u, i);
                }
            }
            if (bestUnit < 0)
                return at;
            used += units[bestUnit].Extra(bestIndex) - units[bestUnit].Extra(at[bestUnit]);
            at[bestUnit] = bestIndex;
        }
    }

    /// <summary>
    /// The least summed KL within the budget by dynamic programming over the added bits in cells: best[b] is the
    /// least KL of the units so far with at most b cells added. Costs are rounded up to whole cells and the
    /// budget down, so the plan fits; with cells of the costs' greatest common divisor nothing is rounded.
    /// </summary>
    private static int[] Optimum(IReadOnlyList<UnitCurve> units, long budget)
    {
        long spare = budget - Cost(units, new int[units.Count]);
        long divisor = 0;
        foreach (var u in units)
        {
            for (int i = 1; i < u.Bits.Length; i++)
                divisor = Gcd(divisor, u.Extra(i));
        }
        var at = new int[units.Count];
        if (divisor == 0 || spare < divisor)
            return at;
        long cell = divisor * CeilDiv(spare / divisor, MaxCells);
        int cells = (int)(spare / cell);
        var best = new double[cells + 1];
        var next = new double[cells + 1];
        var choice = new byte[units.Count][];
        for (int u = 0; u < units.Count; u++)
        {
            var c = units[u];
            var pick = choice[u] = new byte[cells + 1];
            for (int b = 0; b <= cells; b++)
                next[b] = best[b] + c.Kl[0];
            for (int i = 1; i < c.Bits.Length; i++)
            {
                long cost = CeilDiv(c.Extra(i), cell);
                if (cost > cells)
                    break;
                double kl = c.Kl[i];
                for (int b = (int)cost; b <= cells; b++)
                {
                    double candidate = best[b - (int)cost] + kl;
                    if (candidate < next[b])
                        (next[b], pick[b]) = (candidate, (byte)i);
                }
            }
            (best, next) = (next, best);
        }
        int left = cells;
        for (int u = units.Count - 1; u >= 0; u--)
        {
            at[u] = choice[u][left];
            left -= (int)CeilDiv(units[u].Extra(at[u]), cell);
        }
        return at;
    }

    private static void RequireFits(IReadOnlyList<UnitCurve> units, long budget)
    {
        if (Cost(units, new int[units.Count]) > budget)
            throw new ArgumentException($"the smallest candidates need {Cost(units, new int[units.Count])} bits, the budget is {budget}", nameof(budget));
    }

    private static long CeilDiv(long a, long b) => (a + b - 1) / b;

    private static long Gcd(long a, long b) => b == 0 ? a : Gcd(b, a % b);
}
