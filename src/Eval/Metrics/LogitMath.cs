namespace Converter.Eval.Metrics;

/// <summary>
/// Per-token operations on one row of logits, in double precision so a KL divergence of 1e-5 is not lost to the
/// rounding of log-probabilities near −10. "Width" is how many leading logits take part (the tokenizer's actual
/// vocabulary, docs/exl3-format.md §6.1); logits past it are padding.
/// </summary>
public static class LogitMath
{
    /// <summary>log Σ exp(x), stable.</summary>
    public static double LogSumExp(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty)
            throw new ArgumentException("no logits", nameof(x));
        double max = double.NegativeInfinity;
        foreach (var v in x)
            max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in x)
            sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    /// <summary>log softmax(x)[index].</summary>
    public static double LogProbability(ReadOnlySpan<float> x, int index) => x[index] - LogSumExp(x);

    /// <summary>
    /// The indices of the <c>dest.Length</c> largest logits, largest first; equal logits rank by lower index
    /// (a deterministic stand-in for torch.topk, whose order among ties is unspecified).
    /// </summary>
    public static void TopK(ReadOnlySpan<float> x, Span<int> dest)
    {
        int k = dest.Length;
        if (k > x.Length)
            throw new ArgumentException($"top-{k} of {x.Length} logits", nameof(dest));
        int filled = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            if (filled == k && !(v > x[dest[k - 1]]))
                continue;
            // Insert after every kept entry that is ≥ v (earlier indices win ties).
            int pos = filled < k ? filled : k - 1;
            while (pos > 0 && x[dest[pos - 1]] < v)
            {
                dest[pos] = dest[pos - 1];
                pos--;
            }
            dest[pos] = i;
            if (filled < k)
                filled++;
        }
    }

    /// <summary>
    /// For one token: KL(softmax(b) ‖ softmax(a)) (exllamav3's KL(A, B), B the reference), KL(softmax(a) ‖ softmax(b))
    /// and b's top-1 probability.
    /// </summary>
    public static (double KlAb, double KlBa, double TopProbB) Compare(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"logit rows of width {a.Length} and {b.Length}");
        double lseA = LogSumExp(a), lseB = LogSumExp(b);
        double klAb = 0, klBa = 0, maxB = double.NegativeInfinity;
        for (int i = 0; i < a.Length; i++)
        {
            double la = a[i] - lseA, lb = b[i] - lseB, d = lb - la;
            klAb += Math.Exp(lb) * d;
            klBa -= Math.Exp(la) * d;
            maxB = Math.Max(maxB, lb);
        }
        // Each sum is ≥ 0 in exact arithmetic; identical rows give ±1e-17 noise, which is 0.
        return (Math.Max(klAb, 0), Math.Max(klBa, 0), Math.Exp(maxB));
    }

    /// <summary>
    /// <see cref="Compare"/>'s KlAb alone, to the bit, with b's <see cref="LogSumExp"/> given: two exponentials per logit
    /// instead of four, for a reference compared against many rows (<see cref="ReferenceKl"/>).
    /// </summary>
    public static double KlFromReference(ReadOnlySpan<float> a, ReadOnlySpan<float> b, double lseB)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"logit rows of width {a.Length} and {b.Length}");
        double lseA = LogSumExp(a), klAb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double la = a[i] - lseA, lb = b[i] - lseB, d = lb - la;
            klAb += Math.Exp(lb) * d;
        }
        return Math.Max(klAb, 0);
    }
}
