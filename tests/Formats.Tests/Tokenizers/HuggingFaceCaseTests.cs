using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Converter.Formats.Tokenizers;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Formats.Tests.Tokenizers;

/// <summary>
/// The second reference, Data/hf-cases.json, made by the Hugging Face tokenizers library itself (see
/// Data/generate-hf-cases.js): the five test tokenizers and variants of them that use the tokenizer.json
/// features the test models do not (Split regexes, Metaspace, unknown tokens, added-token options, other
/// normalizers, pre-tokenizers, decoders and post-processors), each on strings chosen to hit edge cases, with
/// the decodes, and the whole calibration text as a token count and SHA-256 of the ids.
/// </summary>
public sealed class HuggingFaceCaseTests
{
    private static readonly Lazy<Fixture> Data = new(() => JsonSerializer.Deserialize<Fixture>(
        File.ReadAllText(Path.Combine(RepoPaths.Root, "tests", "Formats.Tests", "Tokenizers", "Data", "hf-cases.json")),
        TestTokenizers.SnakeCase)!);

    private static readonly ConcurrentDictionary<string, Tokenizer> Loaded = new();

    public static IEnumerable<TestCaseData> Cases() =>
        Data.Value.Tokenizers.SelectMany(t => t.Cases.Select((c, i) =>
            new TestCaseData(t.Name, i).SetArgDisplayNames(t.Name, $"#{i} {TestTokenizers.Display(c.Text)}")));

    public static IEnumerable<TestCaseData> Configurations() =>
        Data.Value.Tokenizers.Select(t => new TestCaseData(t.Name).SetArgDisplayNames(t.Name));

    [TestCaseSource(nameof(Cases))]
    public void EncodesAndDecodesLikeHuggingFace(string name, int index)
    {
        var tokenizer = Load(name);
        var c = Config(name).Cases[index];

        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.Encode(c.Text), Is.EqualTo(c.Ids), "ids with special tokens");
            Assert.That(tokenizer.Encode(c.Text, addSpecialTokens: false), Is.EqualTo(c.IdsNoSpecial), "ids without special tokens");
            Assert.That(tokenizer.Decode(c.Ids), Is.EqualTo(c.Decoded), "decode");
            Assert.That(tokenizer.Decode(c.Ids, skipSpecialTokens: true), Is.EqualTo(c.DecodedSkipSpecial), "decode skipping special tokens");
            Assert.That(tokenizer.Decode(c.IdsNoSpecial.AsSpan(0, Math.Max(0, c.IdsNoSpecial.Length - 1))),
                Is.EqualTo(c.DecodedTruncated), "decode of all but the last token");
        });
    }

    [TestCaseSource(nameof(Configurations))]
    public void EncodesCalibrationTextLikeHuggingFace(string name)
    {
        var tokenizer = Load(name);
        var text = File.ReadAllText(Path.Combine(RepoPaths.Samples, "data", "calibration.txt"));

        var ids = tokenizer.Encode(text, addSpecialTokens: false);

        var expected = Config(name).Calibration;
        Assert.That((ids.Length, Sha256(ids)), Is.EqualTo((expected.Count, expected.Sha256)));
    }

    /// <summary>The two references agree wherever they cover the same string (checks the generator's setup).</summary>
    [TestCaseSource(typeof(TestTokenizers), nameof(TestTokenizers.Models))]
    public void AgreesWithReferenceCases(string model)
    {
        var hf = Config(model).Cases.ToDictionary(c => c.Text);
        var reference = TestTokenizers.ReferenceCases(model);

        Assert.That(reference.All(r => hf.ContainsKey(r.Text)), "every reference string is in hf-cases.json");
        foreach (var r in reference)
        {
            Assert.That(hf[r.Text].Ids, Is.EqualTo(r.Ids), TestTokenizers.Display(r.Text));
            Assert.That(hf[r.Text].IdsNoSpecial, Is.EqualTo(r.IdsNoSpecial), TestTokenizers.Display(r.Text));
        }
    }

    internal static string Sha256(int[] ids)
    {
        var bytes = new byte[ids.Length * 4];
        Buffer.BlockCopy(ids, 0, bytes, 0, bytes.Length); // little-endian int32, as the generator hashes them
        return Convert.ToHexStringLower(SHA256.HashData(bytes));
    }

    private static FixtureTokenizer Config(string name) => Data.Value.Tokenizers.Single(t => t.Name == name);

    private static Tokenizer Load(string name) => Loaded.GetOrAdd(name, _ =>
    {
        var config = Config(name);
        if (config.Override == null)
            return TestTokenizers.Load(config.Base);
        var json = TestTokenizers.ApplyOverride(File.ReadAllText(TestTokenizers.TokenizerPath(config.Base)), config.Override);
        return Tokenizer.FromJson(json, $"hf-cases.json variant {name}");
    });

    private sealed record Fixture(string Generator, List<FixtureTokenizer> Tokenizers);

    private sealed record FixtureTokenizer(string Name, string Base, JsonObject? Override, CalibrationDigest Calibration, List<FixtureCase> Cases);

    private sealed record CalibrationDigest(int Count, string Sha256);

    private sealed record FixtureCase(
        string Text, int[] Ids, int[] IdsNoSpecial, string Decoded, string DecodedSkipSpecial, string DecodedTruncated);
}
