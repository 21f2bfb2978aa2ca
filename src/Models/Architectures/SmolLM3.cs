using Converter.Formats.HuggingFace;

namespace Converter.Models.Architectures;

/// <summary>
/// SmolLM3 (modeling_smollm3.py): Llama's block with NoPE layers — layer i applies RoPE only when
/// no_rope_layers[i] is 1 (the list defaults to every no_rope_layer_interval-th layer without RoPE).
/// </summary>
internal static class SmolLM3
{
    public static ArchitectureDefinition Definition { get; } = new("SmolLM3ForCausalLM", "smollm3", config =>
        DecoderFields.Base(config, "SmolLM3ForCausalLM", Layers(config)) with
        {
            QkvBias = DecoderFields.Flag(config, "attention_bias"),
            OutputBias = DecoderFields.Flag(config, "attention_bias"),
            MlpBias = DecoderFields.Flag(config, "mlp_bias"),
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
        });

    private static IReadOnlyList<LayerAttention> Layers(ModelConfig config)
    {
        var f = config.Fields;
        int layers = config.NumHiddenLayers;
        var useRope = f.OptionalIntList("no_rope_layers");
        if (useRope == null)
        {
            // SmolLM3Config: no_rope_layers = [int((i + 1) % interval != 0) for i in range(layers)], interval 4.
            int interval = f.OptionalInt("no_rope_layer_interval") ?? 4;
            useRope = Enumerable.Range(0, layers).Select(i => (i + 1) % interval != 0 ? 1 : 0).ToArray();
        }
        if (useRope.Count != layers)
            throw f.Error($"no_rope_layers has {useRope.Count} entries for {layers} layers");
        var sliding = DecoderFields.SlidingLayers(config);
        bool slidingUsed = DecoderFields.Flag(config, "use_sliding_window");
        int? window = slidingUsed ? DecoderFields.Window(config) : null;
        var rope = RopeConfig.Parse(f);
        return Enumerable.Range(0, layers)
            .Select(i => new LayerAttention(slidingUsed && (sliding?[i] ?? true) ? window : null, useRope[i] != 0 ? rope : null))
            .ToArray();
    }
}
