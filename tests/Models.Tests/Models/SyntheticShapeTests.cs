using Converter.Formats.HuggingFace;
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
}
