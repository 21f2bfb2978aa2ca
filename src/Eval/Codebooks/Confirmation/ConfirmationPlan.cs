using Converter.Eval.Codebooks.Screening;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Codebooks.Confirmation;

/// <summary>Which conversions a multiplier confirmation runs, from a screen's ranking or from an explicit list.</summary>
public static class ConfirmationPlan
{
    /// <summary>
    /// The best <paramref name="top"/> multipliers of a screen's ranking, leaving out the family's locked multiplier
    /// (the baseline is always converted; a screen that listed it ranks it like any candidate).
    /// </summary>
    public static IReadOnlyList<uint> TopOf(IReadOnlyList<RankedScreenResult> ranked, CodebookKind kind, int top)
    {
        if (top < 1)
            throw new ArgumentOutOfRangeException(nameof(top), "a confirmation needs at least one multiplier");
        var locked = CodebookSpec.Default(kind).Multiplier;
        return ranked.OrderBy(r => r.Rank).Select(r => CodebookSpec.ParseMultiplier(r.Result.Multiplier)).Where(m => m != locked).Take(top).ToList();
    }

    /// <summary>
    /// Every conversion: for each seed in order, the locked multiplier first, then each candidate in the given order
    /// (duplicates and the locked multiplier count once). Seed-major, so an interrupted confirmation has every
    /// multiplier at the first seeds rather than every seed of the first multipliers.
    /// </summary>
    public static IReadOnlyList<ConfirmationVariant> Variants(CodebookKind kind, IReadOnlyList<uint> multipliers, IReadOnlyList<int> seeds)
    {
        if (kind == CodebookKind.ThreeInst)
            throw new ArgumentException($"{CodebookRegistry.Get(kind).Name} takes no multiplier (docs/exl3-format.md §1.2)");
        if (seeds.Count == 0)
            throw new ArgumentException("a confirmation needs at least one seed");
        var locked = CodebookSpec.Default(kind);
        var candidates = multipliers.Where(m => m != locked.Multiplier).Distinct().ToList();
        if (candidates.Count == 0)
            throw new ArgumentException($"a confirmation needs at least one multiplier other than the locked {locked.MultiplierHex}");
        var specs = candidates.Select(m => new CodebookSpec(kind, m)).Prepend(locked).ToList();
        foreach (var spec in specs)
            spec.Validate();
        return seeds.Distinct().SelectMany(seed => specs.Select(spec => new ConfirmationVariant(spec, seed))).ToList();
    }
}
