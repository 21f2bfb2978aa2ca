using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Models.Synthetic;
using NUnit.Framework;

namespace Converter.Models.Tests.Models;

/// <summary>The synth presets write configs our loader reads back as the published models' shapes.</summary>
public class SyntheticShapeTests
{
    [Test]
    public void Llama3_70bIsTheLlama31Shape()
    {
        // Llama 3.1/3.3 70B's config.json: the shape whose calibration state passes 2 GiB at the default 128 × 512 tokens.
        var config = ModelConfig.Parse(SyntheticShape.Presets["llama-3-70b"].ToConfigJson(), "config.json");
        var spec = TransformerSpec.From(config);
        Assert.That((spec.HiddenSize, spec.IntermediateSize, spec.Layers, spec.Heads, spec.KvHeads, spec.HeadDim, spec.VocabSize),
            Is.EqualTo((8192, 28672, 80, 64, 8, 128, 128256)));
        Assert.That(spec.TiedEmbeddings, Is.False);
        Assert.That(spec.LayerAttention[0].Rope, Is.EqualTo(new RopeConfig(RopeType.Llama3, 500000, new Llama3RopeScaling(8, 1, 4, 8192))));
        Assert.That(128L * 512 * spec.HiddenSize * sizeof(float), Is.EqualTo(1L << 31));
    }

    [Test]
    public void EveryPresetLoadsWithItsLayerCountOverridable()
    {
        foreach (var (name, shape) in SyntheticShape.Presets)
        {
            var spec = TransformerSpec.From(ModelConfig.Parse((shape with { Layers = 1 }).ToConfigJson(), "config.json"));
            Assert.That((spec.HiddenSize, spec.Layers, spec.VocabSize), Is.EqualTo((shape.Hidden, 1, shape.Vocab)), name);
        }
    }

    [Test]
    public void Qwen3_30bA3bIsThePublishedMixtureOfExperts()
    {
        // Qwen3-30B-A3B's config.json: 48 layers, each a mixture of 128 experts of 768, 8 per token, renormalized.
        var spec = TransformerSpec.From(ModelConfig.Parse(SyntheticShape.Presets["qwen3-30b-a3b"].ToConfigJson(), "config.json"));
        Assert.That((spec.HiddenSize, spec.Layers, spec.Heads, spec.KvHeads, spec.HeadDim, spec.VocabSize), Is.EqualTo((2048, 48, 32, 4, 128, 151936)));
        var moe = spec.Moe!;
        Assert.That((moe.Router.Experts, moe.Router.TopK, moe.Router.NormalizeTopK, moe.ExpertIntermediateSize), Is.EqualTo((128, 8, true, 768)));
        Assert.That(moe.SparseLayers, Has.Count.EqualTo(48).And.All.True);
    }

    [Test]
    public void MixtureOfExpertsCheckpointsHoldEveryExpertAndTheRouter()
    {
        var dir = Path.Combine(Path.GetTempPath(), "synth-moe-" + Guid.NewGuid().ToString("N"));
        try
        {
            var shape = SyntheticShape.Presets["test-tiny-moe"];
            SyntheticCheckpoint.Write(dir, shape, seed: 3, outliers: 2, shardBytes: 1L << 30, tokenizerFiles: null);
            using var reader = CheckpointReader.Open(dir);
            var model = TransformerModel.FromConfig(ModelConfig.Load(dir));
            Assert.That(reader.TensorNames, Is.EquivalentTo(model.Modules.SelectMany(m => m.TensorNames).Distinct()));
            Assert.That(reader.Info("model.layers.0.mlp.gate.weight").Shape, Is.EqualTo(new long[] { 8, 128 }));
            Assert.That(reader.Info("model.layers.0.mlp.experts.7.down_proj.weight").Shape, Is.EqualTo(new long[] { 128, 64 }));
        }
        finally
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
    }
}
