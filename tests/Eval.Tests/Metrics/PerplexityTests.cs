using Converter.Eval.Metrics;

namespace Converter.Eval.Tests.Metrics;

public class PerplexityTests
{
    [Test]
    public void UniformLogitsGiveTheVocabularySize()
    {
        var ppl = new Perplexity(8);
        ppl.AddRow(new float[5 * 8], 8, [0, 1, 2, 3, 4]);
        Assert.That(ppl.Count, Is.EqualTo(4), "positions 0..L-2 predict ids 1..L-1");
        Assert.That(ppl.Value, Is.EqualTo(8).Within(1e-12));
    }

    [Test]
    public void ScoresLogitsAtTPredictingTheIdAtTPlusOne()
    {
        // Position 0 gives the target (id 2) probability 1/2, position 1 gives id 0 probability 1/4; position 2 is not scored.
        float[] logits =
        [
            .. Logs(0.25, 0.25, 0.5),
            .. Logs(0.25, 0.5, 0.25),
            1000f, -1000f, -1000f,
        ];
        var ppl = new Perplexity(3);
        ppl.AddRow(logits, 3, [1, 2, 0]);
        Assert.That(ppl.LogProbSum, Is.EqualTo(Math.Log(0.5) + Math.Log(0.25)).Within(1e-7));
        Assert.That(ppl.Value, Is.EqualTo(Math.Sqrt(8)).Within(1e-6));
    }

    [Test]
    public void SoftmaxRunsOverTheVocabularyOnlyAndRowsMerge()
    {
        // Width 4, vocabulary 2: the padding logit (huge) must not take part.
        float[] row = [0f, 0f, 50f, 50f, 0f, 0f, 50f, 50f];
        var a = new Perplexity(2);
        a.AddRow(row, 4, [0, 1]);
        Assert.That(a.Value, Is.EqualTo(2).Within(1e-12));
        var b = new Perplexity(2);
        b.AddRow(row, 4, [1, 0]);
        a.Merge(b);
        Assert.That((a.Count, a.Value), Is.EqualTo((2L, 2.0)).Within(1e-12));
        Assert.That(() => a.AddRow(row, 4, [0, 3]), Throws.ArgumentException.With.Message.Contains("outside the vocabulary"));
    }

    private static float[] Logs(params double[] p) => p.Select(v => (float)Math.Log(v)).ToArray();
}
