using Converter.Formats.HuggingFace;

namespace Converter.Models.Architectures;

/// <summary>
/// OLMo 3 (modeling_olmo3.py): post-norm blocks (norms on the attention and MLP outputs, none before), q and k
/// RMS-normalized over the whole projection, sliding and full layers by layer_types with a rope per layer type.
/// </summary>
internal static class Olmo3
{
    public static ArchitectureDefinition Definition { get; } = new("Olmo3ForCausalLM", "olmo3", config =>
        DecoderFields.Base(config, "Olmo3ForCausalLM", Layers(config)) with
        {
            BlockNorms = new BlockNorms(null, "post_attention_layernorm", null, "post_feedforward_layernorm"),
            QkNorm = QkNormPlacement.WholeProjection,
            QkvBias = DecoderFields.Flag(config, "attention_bias"),
            OutputBias = DecoderFields.Flag(config, "attention_bias"),
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
        });

    private static IReadOnlyList<LayerAttention> Layers(ModelConfig config)
    {
        // Olmo3Config: three sliding layers, then a full one.
        var sliding = DecoderFields.SlidingLayers(config) ?? Enumerable.Range(0, config.NumHiddenLayers).Select(i => (i + 1) % 4 != 0).ToArray();
        int? window = sliding.Any(s => s) ? DecoderFields.Window(config) : null;
        var full = RopeConfig.Parse(config.Fields, "full_attention");
        var local = RopeConfig.Parse(config.Fields, "sliding_attention");
        return sliding.Select(s => s ? new LayerAttention(window, local) : new LayerAttention(null, full)).ToArray();
    }
}
