using Converter.Compute;

namespace Converter.Models.Tests.Compute;

public class CausalAttentionTests
{
    private const int Heads = 4, KvHeads = 2, HeadDim = 8;

    [TestCase(1, null)]
    [TestCase(19, null)]
    [TestCase(40, null)]
    [TestCase(40, 7)]
    [TestCase(100, 33)]
    public void MatchesNaiveGroupedQueryAttention(int tokens, int? window)
    {
        var (q, k, v) = Operands(new Random(tokens), tokens);
        var actual = new float[q.Length];
        CausalAttention.Apply(q, k, v, actual, tokens, Heads, KvHeads, HeadDim, window);
        var expected = Naive(q, k, v, tokens, window ?? int.MaxValue);
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-5), $"at {i}");
    }

    /// <summary>gpt-oss's sinks: one more logit per head in each softmax's denominator, attending to nothing.</summary>
    [TestCase(1, null)]
    [TestCase(40, null)]
    [TestCase(40, 7)]
    public void SinksJoinTheDenominatorOnly(int tokens, int? window)
    {
        var (q, k, v) = Operands(new Random(tokens + 1), tokens);
        float[] sinks = [-1f, 0.5f, 3f, 20f];
        var actual = new float[q.Length];
        CausalAttention.Apply(q, k, v, actual, tokens, Heads, KvHeads, HeadDim, window, sinks: sinks);
        var expected = Naive(q, k, v, tokens, window ?? int.MaxValue, sinks);
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-5), $"at {i}");
        // A sink of 20 takes nearly all the weight: head 3's output is almost 0, unlike without sinks.
        var plain = new float[q.Length];
        CausalAttention.Apply(q, k, v, plain, tokens, Heads, KvHeads, HeadDim, window);
        Assert.That(Math.Abs(actual[(tokens - 1) * Heads * HeadDim + 3 * HeadDim]), Is.LessThan(1e-4));
        Assert.That(plain, Is.Not.EqualTo(actual));
    }

    [Test]
    public void OutputAtPositionTIgnoresLaterTokens()
    {
        const int tokens = 33;
        var (q, k, v) = Operands(new Random(1), tokens);
        var before = new float[q.Length];
        CausalAttention.Apply(q, k, v, before, tokens, Heads, KvHeads, HeadDim);
        // Change everything from position 20 on; positions 0..19 must not move at all.
        const int cut = 20;
        var rng = new Random(2);
        foreach (var a in new[] { q, k, v })
        {
            int width = a.Length / tokens;
            for (int i = cut * width; i < a.Length; i++)
                a[i] = (float)rng.NextDouble() * 10;
        }
        var after = new float[q.Length];
        CausalAttention.Apply(q, k, v, after, tokens, Heads, KvHeads, HeadDim);
        int qWidth = Heads * HeadDim;
        Assert.That(after.AsSpan(0, cut * qWidth).ToArray(), Is.EqualTo(before.AsSpan(0, cut * qWidth).ToArray()));
        Assert.That(after.AsSpan(cut * qWidth).ToArray(), Is.Not.EqualTo(before.AsSpan(cut * qWidth).ToArray()));
    }

    private static (float[] Q, float[] K, float[] V) Operands(Random rng, int tokens) =>
        (MatMulTests.Random(rng, tokens * Heads * HeadDim).Select(x => x * 3).ToArray(),
         MatMulTests.Random(rng, tokens * KvHeads * HeadDim),
         MatMulTests.Random(rng, tokens * KvHeads * HeadDim));

    private static float[] Naive(float[] q, float[] k, float[] v, int tokens, int window, float[]? sinks = null)
    {
        var output = new float[q.Length];
        for (int h = 0; h < Heads; h++)
        {
            int g = h / (Heads / KvHeads);
            for (int t = 0; t < tokens; t++)
            {
                var scores = new double[tokens];
                double max = double.NegativeInfinity;
                for (int s = 0; s < tokens; s++)
                {
                    bool visible = s <= t && t - s < window;
                    double dot = 0;
                    for (int i = 0; i < HeadDim; i++)
                        dot += q[(t * Heads + h) * HeadDim + i] * k[(s * KvHeads + g) * HeadDim + i];
                    scores[s] = visible ? dot / Math.Sqrt(HeadDim) : double.NegativeInfinity;
                    max = Math.Max(max, scores[s]);
                }
                if (sinks is not null)
                    max = Math.Max(max, sinks[h]);
                double sum = sinks is null ? 0 : Math.Exp(sinks[h] - max);
                for (int s = 0; s < tokens; s++)
                    sum += scores[s] = Math.Exp(scores[s] - max);
                for (int i = 0; i < HeadDim; i++)
                {
                    double acc = 0;
                    for (int s = 0; s < tokens; s++)
                        acc += scores[s] / sum * v[(s * KvHeads + g) * HeadDim + i];
                    output[(t * Heads + h) * HeadDim + i] = (float)acc;
                }
            }
        }
        return output;
    }
}
