using Converter.Compute;
using Converter.Formats.HuggingFace;

namespace Converter.Models.Architectures;

/// <summary>
/// Command-R (modeling_cohere.py, modeling_cohere2.py): LayerNorm without bias, attention and MLP in parallel on the
/// one input norm, interleaved rotary, logits times logit_scale. Cohere 2 alternates sliding layers, which alone
/// apply RoPE, with full NoPE layers.
/// </summary>
internal static class Cohere
{
    public static ArchitectureDefinition Cohere1 { get; } = new("CohereForCausalLM", "cohere", config =>
        Common(config, "CohereForCausalLM", DecoderFields.Uniform(config, window: null)));

    public static ArchitectureDefinition Cohere2 { get; } = new("Cohere2ForCausalLM", "cohere2", config =>
    {
        // Cohere2Config: layer i slides unless (i + 1) is a multiple of sliding_window_pattern (4).
        int pattern = config.Fields.OptionalInt("sliding_window_pattern") ?? 4;
        var sliding = DecoderFields.SlidingLayers(config) ?? Enumerable.Range(0, config.NumHiddenLayers).Select(i => (i + 1) % pattern != 0).ToArray();
        int? window = sliding.Any(s => s) ? DecoderFields.Window(config) : null;
        var rope = RopeConfig.Parse(config.Fields);
        return Common(config, "Cohere2ForCausalLM", sliding.Select(s => s ? new LayerAttention(window, rope) : new LayerAttention(null, null)).ToArray());
    });

    private static TransformerSpec Common(ModelConfig config, string hfName, IReadOnlyList<LayerAttention> layers)
    {
        // Per-head LayerNorms with a (heads, head_dim) weight: each head has its own weights, which our norms do not
        // express yet; refuse rather than run it wrongly.
        if (DecoderFields.Flag(config, "use_qk_norm"))
            throw config.Fields.Error("use_qk_norm = true is not supported");
        return DecoderFields.Base(config, hfName, layers, epsKey: "layer_norm_eps") with
        {
            Norm = NormKind.Layer,
            // CohereConfig's layer_norm_eps default.
            NormEps = (float)(config.Fields.OptionalDouble("layer_norm_eps") ?? 1e-5),
            BlockNorms = new BlockNorms("input_layernorm", null, null, null),
            ParallelBlock = true,
            QkvBias = DecoderFields.Flag(config, "attention_bias"),
            OutputBias = DecoderFields.Flag(config, "attention_bias"),
            RotaryPairing = RotaryPairing.Interleaved,
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
            // CohereConfig's logit_scale default.
            LogitScale = (float)(config.Fields.OptionalDouble("logit_scale") ?? 0.0625),
            TiedEmbeddings = config.Fields.OptionalBool("tie_word_embeddings") ?? true,
        };
    }
}
