using Converter.Trellis.Codebooks;

namespace Converter.Eval.Codebooks.Screening;

/// <summary>A candidate's place in the ranking: 1 is the least distortion. <c>Score</c> is what it was ranked by.</summary>
public sealed record RankedScreenResult(int Rank, double Score, ScreenResult Result);

/// <summary>
/// Orders screen results by their paired difference from the reference relative to the reference's MSE: at one K,
/// or averaged over the screen's K (so each K weighs the same whatever its MSE's magnitude). Ties, and equal
/// scores in general, go to the smaller multiplier, so the same results always rank the same.
/// </summary>
public static class ScreenRanking
{
    public static IReadOnlyList<RankedScreenResult> Rank(IEnumerable<ScreenResult> results, int? rankBy)
    {
        var scored = results.Select(r => (Score: Score(r, rankBy), Result: r, Multiplier: CodebookSpec.ParseMultiplier(r.Multiplier)))
            .OrderBy(s => s.Score)
            .ThenBy(s => s.Multiplier)
            .ToList();
        return scored.Select((s, i) => new RankedScreenResult(i + 1, s.Score, s.Result)).ToList();
    }

    /// <summary>The relative paired difference at <paramref name="rankBy"/>, or its mean over the result's K.</summary>
    public static double Score(ScreenResult result, int? rankBy) =>
        rankBy is { } k ? result.At(k).RelativeDifference : result.PerBits.Average(b => b.RelativeDifference);
}
