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
        Assert.That((c.TieWordEmbeddings, c.AttentionQkvBias, c.RmsNormEps), Is.EqualTo((false, false, 1e-6)));
        Assert.That(c.TorchDtype, Is.EqualTo("float16"));
        Assert.That(c.EosTokenIds, Is.EqualTo(new[] { 5, 7 }));
        Assert.That(c.BosTokenId, Is.Null);
        Assert.That(c.Rope, Is.EqualTo(new RopeConfig(RopeType.Default, 10000.0)));
    }

    [TestCase("rope_type")]
    [TestCase("type")]
    public void OldTopLevelRopeThetaAndRopeScaling(string typeKey)
    {
        using var dir = new TempDirectory();
        var c = Load(dir, Base + $$"""
            , "rope_theta": 500000, "rope_scaling": {"{{typeKey}}": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
            """);
        Assert.That(c.Rope, Is.EqualTo(new RopeConfig(RopeType.Llama3, 500000.0, new Llama3RopeScaling(8.0, 1.0, 4.0, 8192))));
    }

    [Test]
    public void OldFormWithNullScalingIsDefaultRope()
    {
        using var dir = new TempDirectory();
        var c = Load(dir, Base + """, "rope_theta": 1000000.0, "rope_scaling": null""");
        Assert.That(c.Rope, Is.EqualTo(new RopeConfig(RopeType.Default, 1e6)));
    }

    [Test]
    public void RopeParametersFormWinsOverTopLevelKeys()
    {
        using var dir = new TempDirectory();
        var c = Load(dir, Base + """
            , "rope_theta": 1.0, "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
              "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
            """);
        Assert.That(c.Rope, Is.EqualTo(new RopeConfig(RopeType.Llama3, 500000.0, new Llama3RopeScaling(32.0, 1.0, 4.0, 8192))));
    }

    [Test]
    public void AttentionBiasPerArchitecture()
    {
        using var dir = new TempDirectory();
        var llama = Load(dir, Base + """, "attention_bias": true, "mlp_bias": true""");
        Assert.That((llama.AttentionQkvBias, llama.AttentionOutputBias, llama.MlpBias), Is.EqualTo((true, true, true)));

        var mistral = Load(dir, Base.Replace("LlamaForCausalLM", "MistralForCausalLM") + """, "attention_bias": true, "sliding_window": 4096""");
        Assert.That((mistral.AttentionQkvBias, mistral.SlidingWindow), Is.EqualTo((false, (int?)4096)));

        var qwen3 = Load(dir, Base.Replace("LlamaForCausalLM", "Qwen3ForCausalLM") + """, "attention_bias": true""");
        Assert.That((qwen3.AttentionQkvBias, qwen3.AttentionOutputBias, qwen3.HasQkNorm), Is.EqualTo((true, true, true)));
    }

    [Test]
    public void ModelTypeIsTheFallbackForMissingArchitectures()
    {
        using var dir = new TempDirectory();
        var c = Load(dir, Base.Replace("\"architectures\": [\"LlamaForCausalLM\"],", "\"model_type\": \"qwen2\","));
        Assert.That(c.Architecture, Is.EqualTo(ModelArchitecture.Qwen2));
    }

    [Test]
    public void UnsupportedArchitecture() =>
        Assert.That(Fails(Base.Replace("LlamaForCausalLM", "GPT2LMHeadModel")).Message,
            Does.Contain("unsupported architecture GPT2LMHeadModel").And.Contain("LlamaForCausalLM"));

    [TestCase("rope_parameters", "yarn")]
    [TestCase("rope_scaling", "dynamic")]
    public void UnsupportedRopeType(string key, string type) =>
        Assert.That(Fails(Base + $$""", "{{key}}": {"rope_type": "{{type}}", "factor": 4.0}""").Message,
            Does.Contain($"unsupported rope type '{type}'"));

    [Test]
    public void Llama3RopeMissingAField() =>
        Assert.That(Fails(Base + """, "rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}""").Message,
            Does.Contain("missing 'rope_parameters.original_max_position_embeddings'"));

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
    public void UnsupportedActivation() =>
        Assert.That(Fails(Base + """, "hidden_act": "gelu" """).Message, Does.Contain("unsupported hidden_act 'gelu'"));

    [Test]
    public void QwenSlidingWindowIsRefused() =>
        Assert.That(Fails(Base.Replace("LlamaForCausalLM", "Qwen2ForCausalLM") + """, "use_sliding_window": true""").Message,
            Does.Contain("use_sliding_window"));

    [Test]
    public void InvalidJsonAndMissingFile()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("config.json"), "{\"hidden_size\": ");
        Assert.That(() => ModelConfig.Load(dir.Path), Throws.TypeOf<ModelConfigException>().With.Message.Contains("not valid JSON"));
        Assert.That(() => ModelConfig.Load(dir.File("nope.json")), Throws.TypeOf<ModelConfigException>().With.Message.Contains("nope.json: file not found"));
    }

    [Test]
    public void ParseTakesAnInMemoryObject()
    {
        var json = JsonNode.Parse("{" + Base + "}")!.AsObject();
        Assert.That(ModelConfig.Parse(json, "inline").HiddenSize, Is.EqualTo(512));
    }
}
