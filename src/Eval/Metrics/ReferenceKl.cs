namespace Converter.Eval.Metrics;

/// <summary>
/// Mean KL(reference ‖ test) over every token of a set of reference logits, for one reference compared against many
/// test models (`trellis measure`: a perturbed state per unit and K, 336 of them for small-qwen2 at candidates 1..6).
/// Each token's KL is <see cref="LogitComparison"/>'s KlAb to the bit and the sum runs in the same token order, so the
/// mean is the one a comparison gives; only that direction is computed (no perplexities, top-K or reverse KL), the
/// reference's log Σ exp is formed once, and the tokens are spread over the cores. With LogitComparison on one core
/// the 336 KLs of small-qwen2's measurement (2,048 tokens × 151,936 logits each) ran past 5 minutes on an H100 host.
/// </summary>
public sealed class ReferenceKl
{
    private readonly List<(float[] Logits, int Width, double[] Lse)> _batches = [];
    private readonly int _vocabulary;

    /// <param name="vocabulary">The tokenizer's actual vocabulary size: the logits that take part in softmax.</param>
    public ReferenceKl(int vocabulary)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabulary, 1);
        _vocabulary = vocabulary;
    }

    /// <summary>Tokens of the reference so far.</summary>
    public long Tokens => _batches.Sum(b => (long)b.Lse.Length);

    /// <summary>Adds the next batch of reference logits: (tokens, width) row-major, every token in order.</summary>
    public void Add(float[] logits, int width)
    {
        CheckWidth(logits.Length, width);
        int tokens = logits.Length / width;
        var lse = new double[tokens];
        Parallel.For(0, tokens, t => lse[t] = LogitMath.LogSumExp(logits.AsSpan(t * width, _vocabulary)));
        _batches.Add((logits, width, lse));
    }

    /// <summary>Mean over every reference token of KL(reference ‖ test); <paramref name="test"/> gives batch b's logits, shaped as the reference's.</summary>
    public double Mean(Func<int, float[]> test)
    {
        if (_batches.Count == 0)
            throw new InvalidOperationException("no reference logits");
        double sum = 0;
        for (int b = 0; b < _batches.Count; b++)
        {
            var (reference, width, lse) = _batches[b];
            var logits = test(b);
            if (logits.Length != reference.Length)
                throw new ArgumentException($"batch {b}: {logits.Length} test logits for {reference.Length} of the reference");
            var kl = new double[lse.Length];
            Parallel.For(0, lse.Length, t => kl[t] = LogitMath.KlFromReference(
                logits.AsSpan(t * width, _vocabulary), reference.AsSpan(t * width, _vocabulary), lse[t]));
            foreach (var v in kl)
                sum += v;
        }
        return sum / Tokens;
    }

    private void CheckWidth(long values, int width)
    {
        if (width < _vocabulary)
            throw new ArgumentException($"logit width {width} is less than the vocabulary {_vocabulary}");
        if (values % width != 0)
            throw new ArgumentException($"{values} logits are not whole rows of {width}");
    }
}
