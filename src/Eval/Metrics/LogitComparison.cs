namespace Converter.Eval.Metrics;

/// <summary>The logit-layer results of docs/exl3-format.md §6.1 for a test model A against a reference B.</summary>
/// <param name="LabelInTopkA">Entry K−1: fraction of predicted positions whose target is in A's top K.</param>
/// <param name="TopkAgreement">Entry K−1: fraction of predicted positions where A's and B's top-K lists are identical in order.</param>
/// <param name="Tokens">Positions the KL statistics cover (all L of each row).</param>
/// <param name="Predicted">Positions perplexity and the top-K figures cover (L − 1 of each row).</param>
public sealed record LogitMetrics(
    double PplA,
    double PplB,
    double KlAb,
    double KlBa,
    double KlAbMedian,
    double KlAbP90,
    IReadOnlyList<double> LabelInTopkA,
    IReadOnlyList<double> LabelInTopkB,
    IReadOnlyList<double> TopkAgreement,
    IReadOnlyList<KlBucket> KlBuckets,
    long Tokens,
    long Predicted);

/// <summary>
/// Accumulates the logit-layer comparison of §6.1 row by row (<see cref="AddRow"/>, <see cref="Merge"/>):
/// perplexity of each model over positions 0…L−2 against ids 1…L−1; label-in-top-K and top-K agreement over the
/// same positions, top-K taken over every logit; KL both ways over all L positions and over the first
/// <c>vocabulary</c> logits; per-token KL(A, B) and B's top-1 probability for the median, p90 and buckets.
/// </summary>
public sealed class LogitComparison
{
    private readonly int _topK;
    private readonly int _vocabulary;
    private readonly Perplexity _pplA, _pplB;
    private readonly long[] _hitsA, _hitsB, _agree;
    private readonly List<double> _klAb = [], _topProbB = [];
    private double _klAbSum, _klBaSum;
    private long _predicted;

    /// <param name="topK">Largest K of the top-K figures.</param>
    /// <param name="vocabulary">The tokenizer's actual vocabulary size: the logits that take part in softmax.</param>
    public LogitComparison(int topK, int vocabulary)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabulary, 1);
        _topK = topK;
        _vocabulary = vocabulary;
        _pplA = new Perplexity(vocabulary);
        _pplB = new Perplexity(vocabulary);
        _hitsA = new long[topK];
        _hitsB = new long[topK];
        _agree = new long[topK];
    }

    /// <summary>Adds one row: <paramref name="a"/>, <paramref name="b"/> are (tokens, width) logits, <paramref name="ids"/> the row's tokens.</summary>
    public void AddRow(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int width, ReadOnlySpan<int> ids)
    {
        int tokens = ids.Length;
        if (a.Length != tokens * width || b.Length != a.Length)
            throw new ArgumentException($"logits of {a.Length} and {b.Length} values are not both ({tokens}, {width})");
        if (width < _vocabulary || width < _topK)
            throw new ArgumentException($"logit width {width} is less than the vocabulary {_vocabulary} or top-{_topK}");
        _pplA.AddRow(a, width, ids);
        _pplB.AddRow(b, width, ids);

        Span<int> topA = stackalloc int[_topK], topB = stackalloc int[_topK];
        for (int t = 0; t < tokens; t++)
        {
            var rowA = a.Slice(t * width, width);
            var rowB = b.Slice(t * width, width);
            var (klAb, klBa, topProbB) = LogitMath.Compare(rowA[.._vocabulary], rowB[.._vocabulary]);
            _klAbSum += klAb;
            _klBaSum += klBa;
            _klAb.Add(klAb);
            _topProbB.Add(topProbB);
            if (t == tokens - 1)
                continue;

            LogitMath.TopK(rowA, topA);
            LogitMath.TopK(rowB, topB);
            int target = ids[t + 1];
            bool foundA = false, foundB = false, same = true;
            for (int k = 0; k < _topK; k++)
            {
                foundA |= topA[k] == target;
                foundB |= topB[k] == target;
                same &= topA[k] == topB[k];
                if (foundA)
                    _hitsA[k]++;
                if (foundB)
                    _hitsB[k]++;
                if (same)
                    _agree[k]++;
            }
            _predicted++;
        }
    }

    public void Merge(LogitComparison other)
    {
        if (other._topK != _topK || other._vocabulary != _vocabulary)
            throw new ArgumentException("comparisons with different top-K or vocabulary cannot merge", nameof(other));
        _pplA.Merge(other._pplA);
        _pplB.Merge(other._pplB);
        for (int k = 0; k < _topK; k++)
        {
            _hitsA[k] += other._hitsA[k];
            _hitsB[k] += other._hitsB[k];
            _agree[k] += other._agree[k];
        }
        _klAb.AddRange(other._klAb);
        _topProbB.AddRange(other._topProbB);
        _klAbSum += other._klAbSum;
        _klBaSum += other._klBaSum;
        _predicted += other._predicted;
    }

    public LogitMetrics Result()
    {
        long tokens = _klAb.Count;
        double Fraction(long count) => _predicted == 0 ? double.NaN : (double)count / _predicted;
        return new LogitMetrics(
            _pplA.Value,
            _pplB.Value,
            tokens == 0 ? double.NaN : _klAbSum / tokens,
            tokens == 0 ? double.NaN : _klBaSum / tokens,
            TokenQuantiles.Median(_klAb),
            TokenQuantiles.Quantile(_klAb, 0.9),
            _hitsA.Select(Fraction).ToList(),
            _hitsB.Select(Fraction).ToList(),
            _agree.Select(Fraction).ToList(),
            KlBuckets.Compute(_klAb, _topProbB),
            tokens,
            _predicted);
    }
}
