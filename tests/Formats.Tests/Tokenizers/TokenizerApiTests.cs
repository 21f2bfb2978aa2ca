using Converter.Formats.Tokenizers;
using NUnit.Framework;

namespace Converter.Formats.Tests.Tokenizers;

/// <summary>Vocabulary size, BOS/EOS and token lookups of the test tokenizers, against their config.json and files.</summary>
public sealed class TokenizerApiTests
{
    /// <summary>(model, vocab size = config.json "vocab_size", BOS, EOS as in config.json / generation_config.json).</summary>
    [TestCase("tiny-llama", 4096, 0, 1)]
    [TestCase("rand-llama31", 2048, 0, 1)]
    [TestCase("rand-mistral", 2048, 1, 2)]
    [TestCase("rand-qwen3", 2048, 0, 1)]
    [TestCase("small-qwen2", 8192, 0, 1)]
    public void SizesAndSpecialTokens(string model, int vocabSize, int bos, int eos)
    {
        var tokenizer = TestTokenizers.Load(model);

        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.VocabSize, Is.EqualTo(vocabSize));
            Assert.That(tokenizer.BosTokenId, Is.EqualTo(bos));
            Assert.That(tokenizer.EosTokenId, Is.EqualTo(eos));
            Assert.That(tokenizer.IsSpecialToken(bos) && tokenizer.IsSpecialToken(eos));
        });
    }

    [Test]
    public void TokenLookupsAreInverse()
    {
        var tokenizer = TestTokenizers.Load("rand-mistral");

        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.TokenToId("<s>"), Is.EqualTo(1));
            Assert.That(tokenizer.IdToToken(1), Is.EqualTo("<s>"));
            Assert.That(tokenizer.TokenToId("<0x0A>"), Is.EqualTo(13));
            Assert.That(tokenizer.TokenToId("no such token"), Is.Null);
            Assert.That(tokenizer.IdToToken(tokenizer.VocabSize), Is.Null);
            for (int id = 0; id < tokenizer.VocabSize; id++)
                Assert.That(tokenizer.TokenToId(tokenizer.IdToToken(id)!), Is.EqualTo(id), $"id {id}");
        });
    }

    /// <summary>Without tokenizer_config.json, BOS comes from the post-processor's template (the token before $A).</summary>
    [Test]
    public void BosFromTemplateWithoutConfig()
    {
        var json = File.ReadAllText(TestTokenizers.TokenizerPath("rand-mistral"));

        var tokenizer = Tokenizer.FromJson(json);

        Assert.That((tokenizer.BosTokenId, tokenizer.EosTokenId), Is.EqualTo(((int?)1, (int?)null)));
    }

    [Test]
    public void DecodingAnUnknownIdThrows()
    {
        var tokenizer = TestTokenizers.Load("tiny-llama");

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([5, tokenizer.VocabSize]))!;

        Assert.That(e.Message, Does.Contain($"token id {tokenizer.VocabSize} at position 1"));
    }

    [Test]
    public void EncodesNullAsError() =>
        Assert.Throws<ArgumentNullException>(() => TestTokenizers.Load("tiny-llama").Encode(null!));
}
