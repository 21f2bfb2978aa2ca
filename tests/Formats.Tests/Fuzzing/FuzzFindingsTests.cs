using System.Text;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Formats.Tests.Safetensors;
using Converter.Formats.Tokenizers;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Fuzzing;

/// <summary>
/// Each reader bug the fuzz tests found, reduced to its smallest input, with the error it gets now (before the fix:
/// an InvalidOperationException, an ArgumentException, a multi-line message, an infinite setting or an overflow).
/// </summary>
public class FuzzFindingsTests
{
    private static string Entry(string nameJson) => $"{{{nameJson}:{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}}}";

    private static SafetensorsFormatException HeaderFails(TempDirectory dir, byte[] header)
    {
        var path = dir.File("x.safetensors");
        var bytes = new byte[8 + header.Length + 4];
        BitConverter.TryWriteBytes(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose())!;
        Assert.That(e.Message, Does.StartWith(path + ": ").And.Not.Contain('\n'));
        return e;
    }

    [Test]
    public void SafetensorsNameThatIsNotUtf8()
    {
        using var dir = new TempDirectory();
        var entry = Entry("\"a\""); // {"a":{...}}: the bytes C0 AF (an overlong '/') go after the a
        byte[] header = [.. Encoding.UTF8.GetBytes(entry[..3]), 0xC0, 0xAF, .. Encoding.UTF8.GetBytes(entry[3..])];
        Assert.That(HeaderFails(dir, header).Message, Does.Contain("not valid UTF-8"));
    }

    [Test]
    public void SafetensorsNameEscapingALoneSurrogate()
    {
        using var dir = new TempDirectory();
        Assert.That(HeaderFails(dir, Encoding.UTF8.GetBytes(Entry("\"\\ud800\""))).Message, Does.Contain("unpaired surrogate"));
    }

    [Test]
    public void SafetensorsNameWithALineBreakStaysOnOneLine()
    {
        using var dir = new TempDirectory();
        var header = Entry("\"a\\nb\"").Replace("F32", "X", StringComparison.Ordinal);
        Assert.That(HeaderFails(dir, Encoding.UTF8.GetBytes(header)).Message, Does.Contain("tensor 'a\\nb': unknown or unsupported dtype 'X'"));
    }

    [Test]
    public void IndexThatIsNotUtf8()
    {
        using var dir = new TempDirectory();
        RawSafetensors.Write(dir, "s.safetensors", Entry("\"a\""), 4);
        File.WriteAllBytes(dir.File(CheckpointFiles.IndexFile), [.. "{\"weight_map\":{\"a"u8, 0xFF, .. "\":\"s.safetensors\"}}"u8]);
        var e = Assert.Throws<SafetensorsFormatException>(() => CheckpointReader.Open(dir.Path).Dispose())!;
        Assert.That(e.Message, Does.Contain(CheckpointFiles.IndexFile).And.Contain("not valid UTF-8"));
    }

    [Test]
    public void IndexTotalSizeBeyondDoubleIsIgnored()
    {
        using var dir = new TempDirectory();
        RawSafetensors.Write(dir, "s.safetensors", Entry("\"a\""), 4);
        File.WriteAllText(dir.File(CheckpointFiles.IndexFile), "{\"metadata\":{\"total_size\":1e400},\"weight_map\":{\"a\":\"s.safetensors\"}}");
        Assert.That(CheckpointIndex.Load(dir.File(CheckpointFiles.IndexFile)).TotalSize, Is.Null);
    }

    private static ModelConfigException ConfigFails(string edit, string replacement)
    {
        using var dir = new TempDirectory();
        var json = File.ReadAllText(Path.Combine(RepoPaths.SampleModel, ModelConfig.FileName));
        Assert.That(json, Does.Contain(edit));
        File.WriteAllText(dir.File(ModelConfig.FileName), json.Replace(edit, replacement, StringComparison.Ordinal));
        var e = Assert.Throws<ModelConfigException>(() =>
        {
            var config = ModelConfig.Load(dir.Path);
            _ = RopeConfig.Parse(config.Fields);
        })!;
        Assert.That(e.Message, Does.StartWith(dir.File(ModelConfig.FileName) + ": ").And.Not.Contain('\n'));
        return e;
    }

    [Test]
    public void ConfigKeyGivenTwice() =>
        Assert.That(ConfigFails("\"mlp_bias\": false", "\"vocab_size\": 7").Message, Does.Contain("not valid JSON").And.Contain("vocab_size"));

    [Test]
    public void ConfigKeyEscapingALoneSurrogate() =>
        Assert.That(ConfigFails("\"mlp_bias\"", "\"\\ud800\"").Message, Does.Contain("unpaired surrogate"));

    [Test]
    public void ConfigNumberBeyondDouble() =>
        Assert.That(ConfigFails("\"rope_theta\": 10000.0", "\"rope_theta\": 1e400").Message, Does.Contain("'rope_parameters.rope_theta' is 1e400, expected a finite number"));

    [Test]
    public void ConfigWithTwoBillionLayers() =>
        Assert.That(ConfigFails("\"num_hidden_layers\": 4", "\"num_hidden_layers\": 2000000014").Message, Does.Contain("'num_hidden_layers' is 2000000014, more than the 4,096"));

    [Test]
    public void ConfigWhoseQueryWidthOverflows() =>
        Assert.That(ConfigFails("\"num_attention_heads\": 4", "\"num_attention_heads\": 1073741824").Message, Does.Contain("more than the 1,048,576"));

    private static TokenizerFormatException TokenizerFails(string json, string? config = null)
    {
        using var dir = new TempDirectory();
        var path = dir.File("tokenizer.json");
        File.WriteAllText(path, json);
        if (config != null)
            File.WriteAllText(dir.File("tokenizer_config.json"), config);
        var e = Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromFile(path))!;
        Assert.That(e.Message, Does.StartWith(dir.Path).And.Not.Contain('\n'));
        return e;
    }

    private const string Model = """{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}""";

    [Test]
    public void TokenIdOfIntMaxValueWouldOverflowTheVocabularySize() =>
        Assert.That(TokenizerFails("""{"model": {"type": "BPE", "vocab": {"a": 2147483647}, "merges": []}}""").Message,
            Does.Contain("token id 2147483647 is outside 0..2147483646"));

    [Test]
    public void NegativeAddedTokenId() =>
        Assert.That(TokenizerFails($$"""{"model": {{Model}}, "added_tokens": [{"id": -1, "content": "<s>"}]}""").Message,
            Does.Contain("token id -1 is outside").And.Contain("$.added_tokens[0].id"));

    [Test]
    public void TokenizerConfigEscapingALoneSurrogate() =>
        Assert.That(TokenizerFails($$"""{"model": {{Model}}}""", """{"bos_token": "\ud800"}""").Message,
            Does.Contain("tokenizer_config.json: not valid JSON text").And.Contain("unpaired surrogate"));
}
