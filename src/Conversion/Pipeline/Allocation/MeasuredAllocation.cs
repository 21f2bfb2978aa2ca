namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>
/// Integer K per tensor at a fractional target from a <see cref="Measurement"/>: minimize the sum of the groups'
/// measured KL increases (each group measured alone; summing them assumes small errors add) subject to the same
/// budget as <see cref="BitAllocation"/>, int(bpw·Σnumel). Greedy on marginal efficiency: every group starts at its
/// smallest candidate, then the upgrade with the largest KL decrease per added bit that still fits is taken until
/// none fits. A group's KL is first made non-increasing in K (a measured rise with more bits is noise).
/// </summary>
public static class MeasuredAllocation
{
    /// <summary>A group's candidate K and its (monotone) KL, smallest K first.</summary>
    private sealed record Choice(IReadOnlyList<AllocationTarget> Members, long Numel, int[] Bits, double[] Kl);

    public static Dictionary<string, int> Allocate(IReadOnlyList<AllocationTarget> targets, Measurement measurement, double bitsPerWeight, string source)
    {
        if (bitsPerWeight < 1 || bitsPerWeight > BitAllocation.MaxBits)
            throw new ArgumentOutOfRangeException(nameof(bitsPerWeight), bitsPerWeight, "target bits per weight must be in 1..8");
        var choices = Choices(targets, measurement, source);
        long total = targets.Sum(t => t.Numel);
        long budget = (long)(bitsPerWeight * total);
        var at = new int[choices.Count];
        long used = choices.Sum(c => c.Numel * c.Bits[0]);
        if (used > budget)
        {
            throw new InvalidDataException($"{source}: {bitsPerWeight} bpw is below the smallest measured candidate " +
                $"(K = {choices.Min(c => c.Bits[0])}); measure with smaller --candidates");
        }
        while (true)
        {
            int bestGroup = -1, bestIndex = -1;
            double bestGain = 0;
            for (int g = 0; g < choices.Count; g++)
            {
                var c = choices[g];
                for (int i = at[g] + 1; i < c.Bits.Length; i++)
                {
                    long extra = c.Numel * (c.Bits[i] - c.Bits[at[g]]);
                    if (used + extra > budget)
                        break;
                    double gain = (c.Kl[at[g]] - c.Kl[i]) / extra;
                    if (gain > bestGain)
                        (bestGain, bestGroup, bestIndex) = (gain, g, i);
                }
            }
            if (bestGroup < 0)
                break;
            var chosen = choices[bestGroup];
            used += chosen.Numel * (chosen.Bits[bestIndex] - chosen.Bits[at[bestGroup]]);
            at[bestGroup] = bestIndex;
        }
        var bits = new Dictionary<string, int>();
        for (int g = 0; g < choices.Count; g++)
        {
            foreach (var t in choices[g].Members)
                bits[t.Name] = choices[g].Bits[at[g]];
        }
        return bits;
    }

    /// <summary>Σ over groups of the measured KL at the K each group gets: the KL the measurement predicts for an allocation.</summary>
    public static double PredictedKl(IReadOnlyList<AllocationTarget> targets, Measurement measurement, IReadOnlyDictionary<string, int> bits, string source)
    {
        double sum = 0;
        foreach (var c in Choices(targets, measurement, source))
        {
            int k = bits[c.Members[0].Name];
            int i = Array.IndexOf(c.Bits, k);
            sum += i >= 0 ? c.Kl[i] : Interpolate(c, k);
        }
        return sum;
    }

    /// <summary>KL at a K between or outside the measured candidates: linear in log KL between neighbours, clamped at the ends.</summary>
    private static double Interpolate(Choice c, int k)
    {
        if (k <= c.Bits[0])
            return c.Kl[0];
        if (k >= c.Bits[^1])
            return c.Kl[^1];
        int hi = Array.FindIndex(c.Bits, b => b > k), lo = hi - 1;
        double t = (double)(k - c.Bits[lo]) / (c.Bits[hi] - c.Bits[lo]);
        double a = Math.Log(Math.Max(c.Kl[lo], 1e-30)), b = Math.Log(Math.Max(c.Kl[hi], 1e-30));
        return Math.Exp(a + t * (b - a));
    }

    private static List<Choice> Choices(IReadOnlyList<AllocationTarget> targets, Measurement measurement, string source)
    {
        var measured = new Dictionary<(int, string), MeasuredGroup>();
        foreach (var g in measurement.Groups)
            measured[(g.Layer, g.Group)] = g;
        var choices = new List<Choice>();
        foreach (var group in targets.GroupBy(t => (t.Layer, t.Group)))
        {
            var members = group.ToList();
            if (!measured.TryGetValue(group.Key, out var m))
                throw new InvalidDataException($"{source}: no measurement for layer {group.Key.Layer} {group.Key.Group}; was it made for this model?");
            long numel = members.Sum(t => t.Numel);
            if (m.Numel != numel || !m.Linears.OrderBy(n => n, StringComparer.Ordinal).SequenceEqual(members.Select(t => t.Name).OrderBy(n => n, StringComparer.Ordinal)))
                throw new InvalidDataException($"{source}: layer {group.Key.Layer} {group.Key.Group} was measured with other linears; was it made for this model?");
            var bits = m.Kl.Keys.OrderBy(k => k).ToArray();
            if (bits.Length == 0)
                throw new InvalidDataException($"{source}: layer {group.Key.Layer} {group.Key.Group} has no measured K");
            var kl = bits.Select(k => m.Kl[k]).ToArray();
            for (int i = 1; i < kl.Length; i++)
                kl[i] = Math.Min(kl[i], kl[i - 1]);
            choices.Add(new Choice(members, numel, bits, kl));
        }
        if (measured.Count != choices.Count)
            throw new InvalidDataException($"{source}: the measurement has {measured.Count} groups, the model {choices.Count}; was it made for this model?");
        return choices;
    }
}
