using Converter.Formats.Tokenizers;
using NUnit.Framework;

namespace Converter.Formats.Tests.Tokenizers;

/// <summary>
/// The ground truth: every string of tests/data/reference/&lt;model&gt;.tokcases.json must encode to exactly the
/// reference ids, with and without special tokens, and decode back to itself.
/// </summary>
public sealed class ReferenceCaseTests
{
    public static IEnumerable<TestCaseData> Cases() =>
        TestTokenizers.Models.SelectMany(model => TestTokenizers.ReferenceCases(model).Select((c, i) =>
            new TestCaseData(model, i).SetArgDisplayNames(model, $"#{i} {TestTokenizers.Display(c.Text)}")));

    [TestCaseSource(nameof(Cases))]
    public void EncodesLikeReference(string model, int index)
    {
        var tokenizer = TestTokenizers.Load(model);
        var c = TestTokenizers.ReferenceCases(model)[index];

        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.Encode(c.Text), Is.EqualTo(c.Ids), "with special tokens");
            Assert.That(tokenizer.Encode(c.Text, addSpecialTokens: false), Is.EqualTo(c.IdsNoSpecial), "without special tokens");
        });
    }

    /// <summary>The Hugging Face library decodes every reference case back to its text (checked when hf-cases.json was made).</summary>
    [TestCaseSource(nameof(Cases))]
    public void DecodesBackToText(string model, int index)
    {
        var tokenizer = TestTokenizers.Load(model);
        var c = TestTokenizers.ReferenceCases(model)[index];

        Assert.That(tokenizer.Decode(c.IdsNoSpecial), Is.EqualTo(c.Text));
    }

    /// <summary>The references themselves: BOS first exactly when special tokens were requested.</summary>
    [TestCaseSource(nameof(Cases))]
    public void ReferenceAddsOnlyBos(string model, int index)
    {
        var c = TestTokenizers.ReferenceCases(model)[index];
        var bos = TestTokenizers.Load(model).BosTokenId;

        Assert.That(bos, Is.Not.Null);
        Assert.That(c.Ids, Is.EqualTo(new[] { bos!.Value }.Concat(c.IdsNoSpecial)));
    }
}
