using System.Text.Json.Nodes;
using Converter.Formats.HuggingFace;
using Converter.TestSupport;

namespace Converter.Formats.Tests.HuggingFace;

public class ModelConfigTests
{
    [Test]
    public void TinyLlama()
    {
        var c = ModelConfig.Load(RepoPaths.SampleModel);
        Assert.That(c.ArchitectureNames, Is.EqualTo(new[] { "LlamaForCausalLM" }));
        Assert.That((c.NumHiddenLayers, c.HiddenSize, c.IntermediateSize, c.VocabSize), Is.EqualTo((4, 256, 768, 4096)));
        Assert.That((c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.GroupSize), Is.EqualTo((4, 2, 64, 2)));
        Assert.That(c.MaxPositionEmbeddings, Is.EqualTo(4096));
        Assert.That(c.TieWordEmbeddings, Is.False);
        Assert.That((c.BosTokenId, c.PadTokenId, c.TorchDtype), Is.EqualTo(((int?)0, (int?)2, "bfloat16")));
        Assert.That(c.EosTokenIds, Is.EqualTo(new[] { 1 }));
    }

    [Test]
    public void RandLlama31HasTiedEmbeddings()
    {
        var c = ModelConfig.Load(RepoPaths.TestModel("rand-llama31"));
        Assert.That(c.ArchitectureNames, Is.EqualTo(new[] { "LlamaForCausalLM" }));
        Assert.That((c.NumHiddenLayers, c.HiddenSize, c.VocabSize, c.TieWordEmbeddings), Is.EqualTo((2, 256, 2048, true)));
        Assert.That(c.PadTokenId, Is.Null);
    }

    [Test]
    public void RandMistral()
    {
        var c = ModelConfig.Load(RepoPaths.TestModel("rand-mistral"));
        Assert.That(c.ArchitectureNames, Is.EqualTo(new[] { "MistralForCausalLM" }));
        Assert.That((c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim), Is.EqualTo((2, 4, 2, 64)));
        Assert.That((c.BosTokenId, c.EosTokenIds[0], c.VocabSize), Is.EqualTo(((int?)1, 2, 2048)));
        Assert.That(c.TieWordEmbeddings, Is.False);
    }

    [Test]
    public void RandQwen3()
    {
        var c = ModelConfig.Load(RepoPaths.TestModel("rand-qwen3"));
        Assert.That(c.ArchitectureNames, Is.EqualTo(new[] { "Qwen3ForCausalLM" }));
        Assert.That(c.TieWordEmbeddings, Is.True);
        Assert.That(c.HeadDim, Is.EqualTo(64));
    }

    [Test]
    public void SmallQwen2DerivesHeadDim()
    {
        var c = ModelConfig.Load(RepoPaths.RequireSharedModel("small-qwen2"));
        Assert.That(c.ArchitectureNames, Is.EqualTo(new[] { "Qwen2ForCausalLM" }));
        Assert.That((c.NumHiddenLayers, c.HiddenSize, c.IntermediateSize, c.VocabSize), Is.EqualTo((8, 512, 1280, 8192)));
        // No head_dim in this config: derived as hidden / heads.
        Assert.That((c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim), Is.EqualTo((8, 2, 64)));
        Assert.That(c.TieWordEmbeddings, Is.True);
    }

    [Test]
    public void RawJsonKeepsUnknownKeysAndSavesThem()
    {
        using var dir = new TempDirectory();
        var c = ModelConfig.Load(RepoPaths.TestModel("rand-qwen3"));
        Assert.That(c.Json["layer_types"]!.AsArray(), Has.Count.EqualTo(2));

        c.Json["quantization_config"] = new JsonObject { ["quant_method"] = "exl3", ["bits"] = 4.0 };
        c.SaveJson(dir.File("config.json"));
        var again = ModelConfig.Load(dir.Path);
        Assert.That(again.Json["quantization_config"]!["quant_method"]!.GetValue<string>(), Is.EqualTo("exl3"));
        Assert.That(again.Json["max_window_layers"]!.GetValue<int>(), Is.EqualTo(28));
        Assert.That(again.HeadDim, Is.EqualTo(64));
    }
}
