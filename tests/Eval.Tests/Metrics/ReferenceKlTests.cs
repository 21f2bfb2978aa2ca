using Converter.Eval.Metrics;

namespace Converter.Eval.Tests.Metrics;

/// <summary>`trellis measure`'s KL against one reference: the mean LogitComparison gives, to the bit.</summary>
public class ReferenceKlTests
{
    [Test]
    public void MeanIsTheComparisonsKlToTheBit()
    {
        // Two batches of 2 rows × 37 tokens, logits 203 wide for a vocabulary of 197 (the padding must not count).
        const int rows = 2, tokens = 37, width = 203, vocabulary = 197;
        var rng = new Random(7);
        float[] Logits(float spread) => Enumerable.Range(0, rows * tokens * width).Select(_ => (float)(rng.NextDouble() * spread - spread / 2)).ToArray();
        var reference = new[] { Logits(12), Logits(12) };
        var test = reference.Select(r => r.Select(v => v + (float)(rng.NextDouble() - 0.5)).ToArray()).ToArray();
        foreach (var batch in test)
            batch[5 * width + vocabulary + 1] = 1e6f; // padding past the vocabulary: ignored by both

        var comparison = new LogitComparison(1, vocabulary);
        var referenceKl = new ReferenceKl(vocabulary);
        var ids = new int[tokens];
        for (int b = 0; b < 2; b++)
        {
            for (int r = 0; r < rows; r++)
                comparison.AddRow(test[b].AsSpan(r * tokens * width, tokens * width), reference[b].AsSpan(r * tokens * width, tokens * width), width, ids);
            referenceKl.Add(reference[b], width);
        }

        double mean = referenceKl.Mean(b => test[b]);
        Assert.That(mean, Is.GreaterThan(0.01));
        Assert.That(BitConverter.DoubleToInt64Bits(mean), Is.EqualTo(BitConverter.DoubleToInt64Bits(comparison.Result().KlAb)));
        Assert.That(referenceKl.Tokens, Is.EqualTo(2L * rows * tokens));
        Assert.That(referenceKl.Mean(b => reference[b]), Is.Zero);
    }

    [Test]
    public void ShapesThatDoNotMatchAreRefused()
    {
        var kl = new ReferenceKl(4);
        Assert.Throws<InvalidOperationException>(() => kl.Mean(_ => []));
        Assert.Throws<ArgumentException>(() => kl.Add(new float[6], 3));
        Assert.Throws<ArgumentException>(() => kl.Add(new float[10], 4));
        kl.Add(new float[8], 4);
        Assert.Throws<ArgumentException>(() => kl.Mean(_ => new float[4]));
    }
}
