namespace Converter.Eval.Metrics;

/// <summary>Tokens whose reference top-1 probability lies in [Lo, Hi) (the last bucket includes 1), and their KL(A, B).</summary>
public sealed record KlBucket(double Lo, double Hi, long Tokens, double Fraction, double? KlMean, double? KlMedian);

/// <summary>
/// KL(A, B) bucketed by the reference's top-1 probability (docs/exl3-format.md §6.1): the mean KL is dominated by tokens
/// where the reference itself is undecided, and the buckets show where the divergence comes from.
/// </summary>
public static class KlBuckets
{
    /// <summary>[0, .25), [.25, .5), [.5, .75), [.75, .95), [.95, 1].</summary>
    public static readonly double[] Edges = [0, 0.25, 0.5, 0.75, 0.95, 1];

    public static IReadOnlyList<KlBucket> Compute(IReadOnlyList<double> kl, IReadOnlyList<double> topProbB)
    {
        if (kl.Count != topProbB.Count)
            throw new ArgumentException($"{kl.Count} KL values but {topProbB.Count} probabilities");
        var members = Enumerable.Range(0, Edges.Length - 1).Select(_ => new List<double>()).ToArray();
        for (int i = 0; i < kl.Count; i++)
            members[BucketOf(topProbB[i])].Add(kl[i]);
        return members.Select((m, b) => new KlBucket(Edges[b], Edges[b + 1], m.Count, kl.Count == 0 ? 0 : (double)m.Count / kl.Count,
            m.Count == 0 ? null : m.Average(), m.Count == 0 ? null : TokenQuantiles.Median(m))).ToList();
    }

    /// <summary>The bucket of a probability; rounding can push a certain token's probability a hair over 1, which stays in the last.</summary>
    public static int BucketOf(double p)
    {
        for (int b = 1; b < Edges.Length - 1; b++)
        {
            if (p < Edges[b])
                return b - 1;
        }
        return Edges.Length - 2;
    }
}
