using System.Text.Json.Nodes;
using Converter.Formats.HuggingFace;
using Converter.TestSupport;

namespace Converter.Formats.Tests.HuggingFace;

/// <summary>Config forms and failures the five test models do not exercise, from small hand-written config.json files.</summary>
public class SyntheticConfigTests
{
    private const string Base = """
        "architectures": ["LlamaForCausalLM"], "hidden_size": 512, "intermediate_size": 1024,
        "num_hidden_layers": 2, "num_attention_heads": 8, "vocab_size": 1000, "max_position_embeddings": 2048
        """;

    private static ModelConfig Load(TempDirectory dir, string body)
    {
        File.WriteAllText(dir.File("config.json"), "{" + body + "}");
        return ModelConfig.Load(dir.Path);
    }

    private static ModelConfigException Fails(string body)
    {
        using var dir = new TempDirectory();
        var e = Assert.Throws<ModelConfigException>(() => Load(dir, body))!;
        Assert.That(e.Message, Does.Contain("config.json"));
        return e;
    }

    [Test]
    public void DefaultsWhenOptionalKeysAreAbsent()
    {
        using var dir = new TempDirectory();
        var c = Load(dir, Base + """, "torch_dtype": "float16", "eos_token_id": [5, 7], "bos_token_id": null""");
        Assert.That((c.NumKeyValueHeads, c.HeadDim), Is.EqualTo((8, 64)));
        Assert.That(c.TieWordEmbeddings, Is.False);
        Assert.That(c.TorchDtype, Is.EqualTo("float16"));
        Assert.That(c.EosTokenIds, Is.EqualTo(new[] { 5, 7 }));
        Assert.That(c.BosTokenId, Is.Null);
    }

    [Test]
    public void MissingRequiredKey() =>
        Assert.That(Fails(Base.Replace("\"vocab_size\": 1000, ", "")).Message, Does.Contain("missing 'vocab_size'"));

    [Test]
    public void NonIntegerWhereAnIntegerIsRequired() =>
        Assert.That(Fails(Base.Replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": \"2\"")).Message,
            Does.Contain("'num_hidden_layers' is \"2\", expected an integer"));

    [Test]
    public void HeadsNotAMultipleOfKvHeads() =>
        Assert.That(Fails(Base + """, "num_key_value_heads": 3""").Message, Does.Contain("not a multiple of num_key_value_heads 3"));

    [Test]
    public void InvalidJsonAndMissingFile()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("config.json"), "{\"hidden_size\": ");
        Assert.That(() => ModelConfig.Load(dir.Path), Throws.TypeOf<ModelConfigException>().With.Message.Contains("not valid JSON"));
        Assert.That(() => ModelConfig.Load(dir.File("nope.json")), Throws.TypeOf<ModelConfigException>().With.Message.Contains("nope.json: file not found"));
    }

    [Test]
    public void MultimodalWrapperReadsTheTextConfig()
    {
        using var dir = new TempDirectory();
        var c = Load(dir, """
            "architectures": ["Gemma3ForConditionalGeneration"], "tie_word_embeddings": true, "eos_token_id": 1,
            "text_config": {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
              "vocab_size": 2048, "max_position_embeddings": 4096}
            """);
        Assert.That((c.HiddenSize, c.NumHiddenLayers, c.VocabSize, c.TieWordEmbeddings), Is.EqualTo((256, 2, 2048, true)));
        Assert.That(c.EosTokenIds, Is.EqualTo(new[] { 1 }));
    }

    /// <summary>text_config is read first; a key it lacks (or holds as null) comes from the top level, errors naming where it was found.</summary>
    [Test]
    public void TextConfigFallsBackToTheTopLevel()
    {
        using var dir = new TempDirectory();
        var c = Load(dir, """
            "architectures": ["Gemma3ForConditionalGeneration"], "tie_word_embeddings": false, "sliding_window_pattern": 6, "model_type": "gemma3",
            "layer_types": ["full_attention"], "query_pre_attn_scalar": "bad",
            "text_config": {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
              "vocab_size": 2048, "max_position_embeddings": 4096, "tie_word_embeddings": true, "model_type": "gemma3_text",
              "layer_types": null}
            """);
        Assert.That((c.TieWordEmbeddings, c.Fields.OptionalString("model_type"), c.Fields.OptionalInt("sliding_window_pattern")), Is.EqualTo((true, "gemma3_text", (int?)6)));
        Assert.That(c.Fields.StringList("layer_types"), Is.EqualTo(new[] { "full_attention" }));
        Assert.That(c.Fields.Has("vision_config"), Is.False);
        Assert.That(() => c.Fields.OptionalDouble("query_pre_attn_scalar"),
            Throws.TypeOf<ModelConfigException>().With.Message.Contains("'query_pre_attn_scalar' is \"bad\""));
        Assert.That(() => c.Fields.RequiredInt("head_dim"), Throws.TypeOf<ModelConfigException>().With.Message.Contains("missing 'text_config.head_dim'"));
    }

    [Test]
    public void ParseTakesAnInMemoryObject()
    {
        var json = JsonNode.Parse("{" + Base + "}")!.AsObject();
        Assert.That(ModelConfig.Parse(json, "inline").HiddenSize, Is.EqualTo(512));
    }
}
