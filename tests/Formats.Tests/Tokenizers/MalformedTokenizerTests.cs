using Converter.Formats.Tokenizers;
using NUnit.Framework;

namespace Converter.Formats.Tests.Tokenizers;

/// <summary>Bad tokenizer.json files fail to load with a <see cref="TokenizerFormatException"/> naming the file and the problem.</summary>
public sealed class MalformedTokenizerTests
{
    private string directory = "";

    [SetUp]
    public void CreateDirectory() => directory = Directory.CreateTempSubdirectory("tokenizer-tests-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(directory, recursive: true);

    private const string Model = """{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}""";

    /// <summary>(tokenizer.json content, text the message must contain).</summary>
    private static readonly (string Json, string Problem)[] Files =
    [
        ("{\"model\": ", "not valid JSON"),
        ("[]", "expected object"),
        ("{}", "missing member \"model\""),
        ("""{"version": "2.0", "model": {Model}}""", "unknown tokenizer.json version '2.0'"),
        ("""{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}""", "unsupported model type 'Unigram' (supported: BPE) (at $.model.type)"),
        ("""{"model": {"type": "WordPiece", "vocab": {"a": 0}}}""", "unsupported model type 'WordPiece'"),
        ("""{"model": {"type": "BPE", "merges": []}}""", "missing member \"vocab\" (at $.model)"),
        ("""{"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}}""", "expected number, found string (at $.model.vocab[\"a\"])"),
        ("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}""", "needs token \"ab\", which is not in the vocabulary (at $.model.merges[0])"),
        ("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}}""", "merge \"a b c\" is not two tokens separated by one space"),
        ("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "x"]]}}""", "needs token \"x\""),
        ("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}}""", "unknown token \"<unk>\" is not in the vocabulary"),
        ("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}}""", "BPE dropout is not supported"),
        ("""{"model": {Model}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}}""", "unsupported normalizer type 'Precompiled'"),
        ("""{"model": {Model}, "pre_tokenizer": {"type": "BertPreTokenizer"}}""", "unsupported pre_tokenizer type 'BertPreTokenizer'"),
        ("""{"model": {Model}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}}""",
            "invalid regex \"(unclosed\""),
        ("""{"model": {Model}, "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways", "invert": false}}""",
            "unknown split behavior 'Sideways'"),
        ("""{"model": {Model}, "pre_tokenizer": {"type": "Metaspace", "replacement": "__", "prepend_scheme": "first"}}""",
            "replacement \"__\" must be one character"),
        ("""{"model": {Model}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "Nope"}]}}""",
            "unsupported pre_tokenizer type 'Nope' (supported: Sequence, ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation) (at $.pre_tokenizer.pretokenizers[1].type)"),
        ("""{"model": {Model}, "decoder": {"type": "WordPiece", "prefix": "##"}}""", "unsupported decoder type 'WordPiece'"),
        ("""{"model": {Model}, "post_processor": {"type": "RobertaProcessing"}}""", "unsupported post_processor type 'RobertaProcessing'"),
        ("""{"model": {Model}, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}}""",
            "special token \"<s>\" is not in special_tokens"),
        ("""{"model": {Model}, "added_tokens": [{"content": "<s>"}]}""", "missing member \"id\" (at $.added_tokens[0])"),
    ];

    public static IEnumerable<TestCaseData> Cases() =>
        Files.Select((f, i) => new TestCaseData(f.Json.Replace("{Model}", Model), f.Problem).SetArgDisplayNames($"#{i}", f.Problem));

    [TestCaseSource(nameof(Cases))]
    public void FailsWithClearMessage(string json, string problem)
    {
        var path = Path.Combine(directory, "tokenizer.json");
        File.WriteAllText(path, json);

        var e = Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromFile(path))!;

        Assert.That(e.Message, Does.StartWith(path + ": ").And.Contain(problem));
        Assert.That(e.TokenizerSource, Is.EqualTo(path));
    }

    [Test]
    public void MalformedTokenizerConfigIsNamed()
    {
        File.WriteAllText(Path.Combine(directory, "tokenizer.json"), $$"""{"model": {{Model}}}""");
        var configPath = Path.Combine(directory, "tokenizer_config.json");
        File.WriteAllText(configPath, """{"bos_token": "<s>"}""");

        var e = Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromFile(Path.Combine(directory, "tokenizer.json")))!;

        Assert.That(e.Message, Does.StartWith(configPath + ": ").And.Contain("\"bos_token\" names \"<s>\", which the tokenizer does not know"));
    }

    [Test]
    public void MissingFileIsFileNotFound() =>
        Assert.Throws<FileNotFoundException>(() => Tokenizer.FromFile(Path.Combine(directory, "absent.json")));
}
