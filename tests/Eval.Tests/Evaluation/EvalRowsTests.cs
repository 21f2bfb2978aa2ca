using Converter.Eval.Evaluation;
using Converter.Formats.Tokenizers;
using Converter.TestSupport;

namespace Converter.Eval.Tests.Evaluation;

/// <summary>Rows as docs/exl3-format.md §6.1 cuts them: one tokenization (BOS once, at the start), consecutive windows.</summary>
public class EvalRowsTests
{
    private static readonly Tokenizer Tokenizer = Tokenizer.FromFile(Path.Combine(RepoPaths.SampleModel, "tokenizer.json"));

    [Test]
    public void RowsAreConsecutiveWindowsOfOneTokenization()
    {
        var text = File.ReadAllText(Path.Combine(RepoPaths.Samples, "data", "eval-heldout.txt"))[..20000];
        var ids = Tokenizer.Encode(text);
        var rows = EvalRows.Build(Tokenizer, text, "t.txt", 3, 64);
        Assert.That(rows, Has.Count.EqualTo(3));
        Assert.That(rows.SelectMany(r => r), Is.EqualTo(ids.Take(3 * 64)));
        Assert.That(rows[0][0], Is.EqualTo(Tokenizer.BosTokenId), "BOS leads the first row");
        Assert.That(rows.Skip(1).Select(r => r[0]), Has.None.EqualTo(Tokenizer.BosTokenId), "and only the first");
    }

    [Test]
    public void AWindowMustEndBeforeTheLastTokenAsInExllamav3()
    {
        // exllamav3 takes windows at a = 0, L, 2L, … while a < n − L: with n = 2L only the first fits.
        var text = "The quick brown fox jumps over the lazy dog and runs away";
        while (Tokenizer.Encode(text).Length % 2 != 0)
            text += " again";
        int n = Tokenizer.Encode(text).Length, length = n / 2;
        Assert.That(EvalRows.Build(Tokenizer, text, "t.txt", 1, length), Has.Count.EqualTo(1));
        Assert.That(() => EvalRows.Build(Tokenizer, text, "t.txt", 2, length),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains("t.txt").And.Message.Contains($"has {n} tokens, enough for 1 rows of {length}"));
        Assert.That(EvalRows.Build(Tokenizer, text, "t.txt", 2, length - 1), Has.Count.EqualTo(2));
    }
}
