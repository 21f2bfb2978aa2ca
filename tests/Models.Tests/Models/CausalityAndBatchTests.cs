using Converter.Models.Running;

namespace Converter.Models.Tests.Models;

public class CausalityAndBatchTests
{
    [TestCase("rand-llama31")]
    [TestCase("rand-qwen3")]
    public void LogitsAtPositionTDoNotDependOnLaterTokens(string name)
    {
        using var h = new ModelHarness(name);
        var ids = h.RandomIds(40, 1);
        var changed = (int[])ids.Clone();
        const int cut = 25;
        for (int t = cut; t < changed.Length; t++)
            changed[t] = (changed[t] + 7) % h.Model.Spec.VocabSize;

        var a = ModelRunner.Run(h.Model, h.Checkpoint, SequenceBatch.FromTokens(ids)).Logits;
        var b = ModelRunner.Run(h.Model, h.Checkpoint, SequenceBatch.FromTokens(changed)).Logits;
        Assert.That(b.RowRange(0, cut).ToArray(), Is.EqualTo(a.RowRange(0, cut).ToArray()), "positions before the change are bit-identical");
        Assert.That(b.Row(cut).ToArray(), Is.Not.EqualTo(a.Row(cut).ToArray()));
    }

    [Test]
    public void RowsOfABatchAreIndependentSequences()
    {
        using var h = new ModelHarness();
        var first = h.RandomIds(24, 2);
        var second = h.RandomIds(24, 3);
        var together = ModelRunner.Run(h.Model, h.Checkpoint, SequenceBatch.FromTokens([first, second])).Logits;
        var alone = ModelRunner.Run(h.Model, h.Checkpoint, SequenceBatch.FromTokens(second)).Logits;
        // Same arithmetic per row (attention per row, GEMM rows independent), so equal up to summation order.
        var expected = alone.Data;
        var actual = together.RowRange(24, 24).ToArray();
        for (int i = 0; i < expected.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-5), $"at {i}");
    }

    [Test]
    public void UnequalRowsAndOutOfRangeIdsAreRejected()
    {
        using var h = new ModelHarness();
        Assert.Throws<ArgumentException>(() => SequenceBatch.FromTokens([[1, 2, 3], [1, 2]]));
        var e = Assert.Throws<ArgumentException>(() =>
            ModelRunner.Run(h.Model, h.Checkpoint, SequenceBatch.FromTokens(1, 2, h.Model.Spec.VocabSize)));
        Assert.That(e!.Message, Does.Contain("position 2").And.Contain("vocabulary"));
    }
}
