namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>
/// Integer K per tensor at a fractional target from a <see cref="Measurement"/>: minimize the sum of the units'
/// measured KL increases (each unit measured alone; summing them assumes small errors add) subject to the same
/// budget as <see cref="BitAllocation"/>, int(bpw·Σnumel), every linear of a unit at the unit's K
/// (<see cref="AllocationSearch"/>). A target belongs to the unit that lists it, so the same code allocates per
/// tensor or per group, as the file was measured. A unit's KL is first made non-increasing in K (a measured rise
/// with more bits is noise).
/// </summary>
public static class MeasuredAllocation
{
    /// <summary>A unit's linears and its candidates with their (monotone) KL.</summary>
    private sealed record Choice(IReadOnlyList<AllocationTarget> Members, UnitCurve Curve);

    public static Dictionary<string, int> Allocate(IReadOnlyList<AllocationTarget> targets, Measurement measurement, double bitsPerWeight, string source)
    {
        if (bitsPerWeight < 1 || bitsPerWeight > BitAllocation.MaxBits)
            throw new ArgumentOutOfRangeException(nameof(bitsPerWeight), bitsPerWeight, "target bits per weight must be in 1..8");
        var choices = Choices(targets, measurement, source);
        var curves = choices.Select(c => c.Curve).ToList();
        long budget = (long)(bitsPerWeight * targets.Sum(t => t.Numel));
        if (AllocationSearch.Cost(curves, new int[curves.Count]) > budget)
        {
            throw new InvalidDataException($"{source}: {bitsPerWeight} bpw is below the smallest measured candidate " +
                $"(K = {curves.Min(c => c.Bits[0])}); measure with smaller --candidates");
        }
        var at = AllocationSearch.Best(curves, budget);
        var bits = new Dictionary<string, int>();
        for (int u = 0; u < choices.Count; u++)
        {
            foreach (var t in choices[u].Members)
                bits[t.Name] = curves[u].Bits[at[u]];
        }
        return bits;
    }

    /// <summary>Σ over units of the measured KL at the K each unit gets: the KL the measurement predicts for an allocation.</summary>
    public static double PredictedKl(IReadOnlyList<AllocationTarget> targets, Measurement measurement, IReadOnlyDictionary<string, int> bits, string source)
    {
        double sum = 0;
        foreach (var c in Choices(targets, measurement, source))
        {
            int k = bits[c.Members[0].Name];
            int i = Array.IndexOf(c.Curve.Bits, k);
            sum += i >= 0 ? c.Curve.Kl[i] : Interpolate(c.Curve, k);
        }
        return sum;
    }

    /// <summary>KL at a K between or outside the measured candidates: linear in log KL between neighbours, clamped at the ends.</summary>
    private static double Interpolate(UnitCurve c, int k)
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

    /// <summary>
    /// The measurement's units with this model's targets: every budgeted linear in exactly one unit, of the layer and
    /// group the model has it in, each unit's weight count the model's, a layer's routed experts never split (they
    /// take one K). Anything else means the file was made for another model.
    /// </summary>
    private static List<Choice> Choices(IReadOnlyList<AllocationTarget> targets, Measurement measurement, string source)
    {
        var byName = targets.ToDictionary(t => t.Name);
        var expertsPerLayer = targets.Where(t => t.Group == BitAllocation.RoutedExperts).CountBy(t => t.Layer).ToDictionary();
        var covered = new HashSet<string>();
        var choices = new List<Choice>();
        foreach (var unit in measurement.Units)
        {
            var members = new List<AllocationTarget>();
            foreach (var name in unit.Linears)
            {
                if (!byName.TryGetValue(name, out var t))
                    throw new InvalidDataException($"{source}: {unit.Label} lists {name}, which this model does not have; was it made for this model?");
                if (!covered.Add(name))
                    throw new InvalidDataException($"{source}: {name} is measured in two units; was it made for this model?");
                if (t.Layer != unit.Layer || t.Group != unit.Group)
                    throw new InvalidDataException($"{source}: {name} was measured as layer {unit.Layer} {unit.Group}, this model has it in layer {t.Layer} {t.Group}; was it made for this model?");
                members.Add(t);
            }
            long numel = members.Sum(t => t.Numel);
            if (unit.Numel != numel)
                throw new InvalidDataException($"{source}: {unit.Label} was measured with {unit.Numel} weights, this model has {numel}; was it made for this model?");
            if (unit.Group == BitAllocation.RoutedExperts && members.Count != expertsPerLayer[unit.Layer])
                throw new InvalidDataException($"{source}: {unit.Label} has {members.Count} of the layer's {expertsPerLayer[unit.Layer]} routed expert linears; they take one K together");
            var bits = unit.Kl.Keys.Order().ToArray();
            if (bits.Length == 0)
                throw new InvalidDataException($"{source}: {unit.Label} has no measured K");
            var kl = bits.Select(k => unit.Kl[k]).ToArray();
            for (int i = 1; i < kl.Length; i++)
                kl[i] = Math.Min(kl[i], kl[i - 1]);
            choices.Add(new Choice(members, new UnitCurve(numel, bits, kl)));
        }
        if (targets.FirstOrDefault(t => !covered.Contains(t.Name)) is { } missing)
            throw new InvalidDataException($"{source}: no measurement for {missing.Name}; was it made for this model?");
        return choices;
    }
}
