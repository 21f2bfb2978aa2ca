namespace Converter.Eval.Metrics;

/// <summary>
/// Perplexity exp(−Σ log p(target) / count) as docs/exl3-format.md §6.1–§6.2 score it: in each row of L tokens the
/// logits at positions 0…L−2 predict ids 1…L−1; the softmax runs over the tokenizer's actual vocabulary.
/// Accumulates row by row and merges.
/// </summary>
public sealed class Perplexity(int vocabulary)
{
    public double LogProbSum { get; private set; }

    /// <summary>Predicted tokens so far (L − 1 per row).</summary>
    public long Count { get; private set; }

    public double Value => Count == 0 ? double.NaN : Math.Exp(-LogProbSum / Count);

    /// <summary>Adds one row: <paramref name="logits"/> is (tokens, width) row-major, <paramref name="ids"/> the row's tokens.</summary>
    public void AddRow(ReadOnlySpan<float> logits, int width, ReadOnlySpan<int> ids)
    {
        int tokens = ids.Length;
        if (logits.Length != tokens * width || vocabulary > width)
            throw new ArgumentException($"logits of {logits.Length} values are not ({tokens}, {width}) with width ≥ vocabulary {vocabulary}");
        for (int t = 0; t + 1 < tokens; t++)
        {
            int target = ids[t + 1];
            if ((uint)target >= (uint)vocabulary)
                throw new ArgumentException($"target id {target} at position {t + 1} is outside the vocabulary ({vocabulary})");
            LogProbSum += LogitMath.LogProbability(logits.Slice(t * width, vocabulary), target);
            Count++;
        }
    }

    public void Merge(Perplexity other)
    {
        LogProbSum += other.LogProbSum;
        Count += other.Count;
    }
}
