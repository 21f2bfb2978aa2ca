using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Models.Tests.Architectures;

/// <summary>
/// Gemma3ForConditionalGeneration's declaration: the text model of Gemma3ForCausalLM under the names the checkpoint
/// holds (hub or transformers ≥ 4.52 layout), written in the hub layout, with text_config's keys falling back to the
/// top level. Checkpoint cases use ../shared's rand-gemma3 wrapped by <see cref="Gemma3MultimodalFixture"/>.
/// </summary>
public class Gemma3MultimodalTests
{
    private const string TextConfig = """
        "text_config": {"model_type": "gemma3_text", "hidden_size": 256, "intermediate_size": 384, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 2048, "max_position_embeddings": 4096,
          "query_pre_attn_scalar": 64, "sliding_window": 16 LAYER_TYPES}
        """;

    private static TransformerSpec Describe(TempDirectory dir, string topLevel, string? textLayerTypes = null)
    {
        var text = TextConfig.Replace("LAYER_TYPES", textLayerTypes is null ? "" : $", \"layer_types\": {textLayerTypes}");
        File.WriteAllText(dir.File("config.json"), $$"""{"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", {{text}} {{topLevel}}}""");
        return TransformerSpec.From(ModelConfig.Load(dir.Path));
    }

    private static (TempDirectory Dir, TransformerSpec Spec) Fixture(Gemma3Layout layout)
    {
        var dir = new TempDirectory();
        Gemma3MultimodalFixture.Write(RepoPaths.RequireSharedModel("rand-gemma3"), dir.Path, layout);
        return (dir, TransformerSpec.From(ModelConfig.Load(dir.Path)));
    }

    [TestCase(Gemma3Layout.Hub)]
    [TestCase(Gemma3Layout.Saved)]
    public void NamesAreTheCheckpointsAndTheModelIsGemma3s(Gemma3Layout layout)
    {
        var (dir, spec) = Fixture(layout);
        using (dir)
        {
            var text = TransformerSpec.From(ModelConfig.Load(RepoPaths.RequireSharedModel("rand-gemma3")));
            Assert.That(spec.ArchitectureName, Is.EqualTo("Gemma3ForConditionalGeneration"));
            Assert.That((spec.Names.Model, spec.Names.LmHead), Is.EqualTo(Gemma3MultimodalFixture.TextNames(layout)));
            Assert.That(spec.LayerAttention, Is.EqualTo(text.LayerAttention));
            Assert.That((spec.HiddenSize, spec.Layers, spec.Norm, spec.BlockNorms, spec.QkNorm, spec.AttentionScale, spec.EmbeddingScale, spec.TiedEmbeddings, spec.Activation),
                Is.EqualTo((text.HiddenSize, text.Layers, text.Norm, text.BlockNorms, text.QkNorm, text.AttentionScale, text.EmbeddingScale, text.TiedEmbeddings, text.Activation)));
        }
    }

    [Test]
    public void SavedLayoutIsWrittenInTheHubLayout()
    {
        var (dir, spec) = Fixture(Gemma3Layout.Saved);
        using (dir)
        {
            var names = spec.Names;
            Assert.That(names.Written("model.language_model.layers.1.self_attn.q_proj"), Is.EqualTo("language_model.model.layers.1.self_attn.q_proj"));
            Assert.That(names.Written("model.language_model.embed_tokens.weight"), Is.EqualTo("language_model.model.embed_tokens.weight"));
            Assert.That(names.Written("lm_head"), Is.EqualTo("language_model.lm_head"));
            Assert.That(names.Written("lm_head.trellis"), Is.EqualTo("language_model.lm_head.trellis"));
            Assert.That(names.Written(Gemma3MultimodalFixture.VisionTensor(Gemma3Layout.Saved)), Is.EqualTo(Gemma3MultimodalFixture.VisionTensor(Gemma3Layout.Hub)));
            Assert.That(names.Written(Gemma3MultimodalFixture.ProjectorTensor(Gemma3Layout.Saved)), Is.EqualTo(Gemma3MultimodalFixture.ProjectorTensor(Gemma3Layout.Hub)));
        }
        var (hubDir, hub) = Fixture(Gemma3Layout.Hub);
        using (hubDir)
            Assert.That(hub.Names.Written("language_model.model.norm.weight"), Is.EqualTo("language_model.model.norm.weight"), "the hub layout is written as read");
    }

    [TestCase(Gemma3Layout.Hub)]
    [TestCase(Gemma3Layout.Saved)]
    public void OnlyTheVisionTowerAndProjectorAreUnread(Gemma3Layout layout)
    {
        var (dir, spec) = Fixture(layout);
        using (dir)
        {
            using var reader = CheckpointReader.Open(dir.Path);
            Assert.That(reader.Contains(TensorNames.Weight(spec.Names.LmHead)), "the fixture keeps the tied head's copy of the embedding");
            Assert.That(new TransformerModel(spec).UnreadTensors(reader.TensorNames),
                Is.EqualTo(new[] { Gemma3MultimodalFixture.VisionTensor(layout), Gemma3MultimodalFixture.ProjectorTensor(layout) }));
        }
    }

    [Test]
    public void WithoutACheckpointTheHubLayoutIsDescribed()
    {
        using var dir = new TempDirectory();
        var spec = Describe(dir, """, "layer_types": ["sliding_attention", "full_attention"]""");
        Assert.That((spec.Names.Model, spec.Names.LmHead), Is.EqualTo(("language_model.model", "language_model.lm_head")));
    }

    [Test]
    public void ACheckpointInNeitherLayoutIsRefused()
    {
        using var dir = new TempDirectory();
        var writer = new SafetensorsWriter();
        writer.AddFloat32("model.embed_tokens.weight", [2, 2], new float[4]);
        writer.Write(dir.File(CheckpointFiles.SingleFile));
        var e = Assert.Throws<SafetensorsFormatException>(() => Describe(dir, ""))!;
        Assert.That(e.Message, Does.StartWith(dir.Path).And.Contain("language_model.model.embed_tokens.weight").And.Contain("model.language_model.embed_tokens.weight"));
    }

    /// <summary>transformers reads text_config; a key it lacks is read from the top level (where exllamav3 reads layer_types).</summary>
    [Test]
    public void TextConfigFirstThenTheTopLevel()
    {
        using var dir = new TempDirectory();
        var topOnly = Describe(dir, """, "layer_types": ["full_attention", "sliding_attention"]""");
        Assert.That(topOnly.LayerAttention.Select(l => l.Window), Is.EqualTo(new int?[] { null, 16 }));

        var both = Describe(dir, """, "layer_types": ["full_attention", "sliding_attention"]""", textLayerTypes: """["sliding_attention", "full_attention"]""");
        Assert.That(both.LayerAttention.Select(l => l.Window), Is.EqualTo(new int?[] { 16, null }));

        // Neither: Gemma3TextConfig's pattern from the top-level sliding_window_pattern, layer i slides unless (i + 1) % 2 == 0.
        var pattern = Describe(dir, """, "sliding_window_pattern": 2""");
        Assert.That(pattern.LayerAttention.Select(l => l.Window), Is.EqualTo(new int?[] { 16, null }));
    }

    [Test]
    public void ModelTypeGemma3SelectsTheMultimodalDeclaration()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("config.json"), "{\"model_type\": \"gemma3\", " + TextConfig.Replace("LAYER_TYPES", "") + "}");
        Assert.That(TransformerSpec.From(ModelConfig.Load(dir.Path)).ArchitectureName, Is.EqualTo("Gemma3ForConditionalGeneration"));
    }
}
