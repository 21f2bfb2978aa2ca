using Converter.Eval.Codebooks.Screening;

namespace Converter.Eval.Codebooks.Confirmation;

/// <summary>Groups a confirmation's measurements by multiplier and pairs each seed with the locked multiplier's.</summary>
public static class ConfirmationStatistics
{
    /// <summary>
    /// One row per multiplier, the locked one first, the others in the order they were measured. Every seed of every
    /// multiplier needs the locked multiplier's measurement at that seed (the plan converts it at each seed).
    /// </summary>
    public static IReadOnlyList<ConfirmationRow> Summarize(IReadOnlyList<ConfirmationMeasurement> measurements)
    {
        var lockedKl = measurements.Where(m => m.Variant.IsLocked).ToDictionary(m => m.Variant.Seed, m => m.Kl);
        var groups = measurements.GroupBy(m => m.Variant.Codebook).OrderBy(g => g.Key.IsDefaultMultiplier ? 0 : 1).ToList();
        return groups.Select(group =>
        {
            var rows = group.OrderBy(m => m.Variant.Seed).ToList();
            var ratios = rows.Select(m => lockedKl.TryGetValue(m.Variant.Seed, out var baseline)
                ? m.Kl / baseline
                : throw new ArgumentException($"{group.Key} at seed {m.Variant.Seed} has no locked-multiplier conversion at that seed to pair with")).ToArray();
            var interval = !group.Key.IsDefaultMultiplier && ratios.Length > 1 ? MeanInterval.Of(ratios) : (MeanInterval?)null;
            return new ConfirmationRow(group.Key.Name, group.Key.MultiplierHex, group.Key.IsDefaultMultiplier, rows.Select(m => m.Variant.Seed).ToList(),
                SampleSpread.Of(rows.Select(m => m.Kl).ToList()), SampleSpread.Of(rows.Select(m => m.Top1).ToList()), ratios.Average(),
                interval?.Low, interval?.High, rows.All(m => m.Exllamav3CanDecode));
        }).ToList();
    }
}
