using Converter.Compute;
using Converter.Formats.HuggingFace;

namespace Converter.Models.Architectures;

/// <summary>
/// Gemma 2 and Gemma 3 (modeling_gemma2/gemma3.py): RMSNorm with (1 + w) around both halves of every block
/// ("sandwich": input, post-attention, pre-feedforward, post-feedforward), GELU-tanh, embeddings times √hidden,
/// scores scaled by query_pre_attn_scalar^−½, sliding and full layers by layer_types. Gemma 2 soft-caps attention and
/// final logits; Gemma 3 normalizes q and k per head and gives sliding layers their own rope.
/// </summary>
internal static class Gemma
{
    private static readonly BlockNorms Sandwich = new("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm");

    public static ArchitectureDefinition Gemma2 { get; } = new("Gemma2ForCausalLM", "gemma2", config =>
    {
        // Gemma2Config: layer_types default to sliding on even layers.
        var sliding = DecoderFields.SlidingLayers(config) ?? Enumerable.Range(0, config.NumHiddenLayers).Select(i => (i + 1) % 2 != 0).ToArray();
        var rope = RopeConfig.Parse(config.Fields);
        int? window = sliding.Any(s => s) ? DecoderFields.Window(config) : null;
        var layers = sliding.Select(s => new LayerAttention(s ? window : null, rope)).ToArray();
        return Common(config, "Gemma2ForCausalLM", layers) with
        {
            AttentionSoftCap = Cap(config, "attn_logit_softcapping"),
            FinalLogitSoftCap = Cap(config, "final_logit_softcapping"),
        };
    });

    public static ArchitectureDefinition Gemma3 { get; } = new("Gemma3ForCausalLM", "gemma3_text", config => Gemma3Text(config, "Gemma3ForCausalLM"));

    /// <summary>Gemma 3's text model, alone (Gemma3ForCausalLM) or inside the multimodal wrapper (<see cref="Gemma3Multimodal"/>).</summary>
    public static TransformerSpec Gemma3Text(ModelConfig config, string hfName)
    {
        // Gemma3TextConfig: layer i slides unless (i + 1) is a multiple of sliding_window_pattern (6).
        int pattern = config.Fields.OptionalInt("sliding_window_pattern") ?? config.Fields.OptionalInt("_sliding_window_pattern") ?? 6;
        var sliding = DecoderFields.SlidingLayers(config) ?? Enumerable.Range(0, config.NumHiddenLayers).Select(i => (i + 1) % pattern != 0).ToArray();
        var global = RopeConfig.Parse(config.Fields, "full_attention");
        var local = LocalRope(config);
        int? window = sliding.Any(s => s) ? DecoderFields.Window(config) : null;
        var layers = sliding.Select(s => s ? new LayerAttention(window, local) : new LayerAttention(null, global)).ToArray();
        return Common(config, hfName, layers) with
        {
            QkNorm = QkNormPlacement.PerHead,
            AttentionSoftCap = Cap(config, "attn_logit_softcapping"),
            FinalLogitSoftCap = Cap(config, "final_logit_softcapping"),
        };
    }

    private static TransformerSpec Common(ModelConfig config, string hfName, IReadOnlyList<LayerAttention> layers)
    {
        // Gemma configs default query_pre_attn_scalar to 256 (Gemma2Config, Gemma3TextConfig).
        double scalar = config.Fields.OptionalDouble("query_pre_attn_scalar") ?? 256;
        if (!(scalar > 0))
            throw config.Fields.Error($"query_pre_attn_scalar is {scalar}, expected a positive number");
        return DecoderFields.Base(config, hfName, layers) with
        {
            Norm = NormKind.RmsUnitOffset,
            BlockNorms = Sandwich,
            QkvBias = DecoderFields.Flag(config, "attention_bias"),
            OutputBias = DecoderFields.Flag(config, "attention_bias"),
            Activation = DecoderFields.Activation(config, config.Fields.Has("hidden_activation") ? "hidden_activation" : "hidden_act", "gelu_pytorch_tanh"),
            // transformers computes query_pre_attn_scalar ** -0.5 in double, then scales float32 scores by it.
            AttentionScale = (float)Math.Pow(scalar, -0.5),
            // The normalizer is √hidden cast to the activations' dtype (float32 here).
            EmbeddingScale = (float)Math.Sqrt(config.HiddenSize),
            // Gemma ties the head unless the config says otherwise.
            TiedEmbeddings = config.Fields.OptionalBool("tie_word_embeddings") ?? true,
        };
    }

    /// <summary>A soft cap, null when the key is absent or null (transformers then does not cap).</summary>
    private static float? Cap(ModelConfig config, string key)
    {
        var cap = config.Fields.OptionalDouble(key);
        if (cap is <= 0)
            throw config.Fields.Error($"{key} is {cap}, expected a positive number or null");
        return cap is { } c ? (float)c : null;
    }

    /// <summary>
    /// The sliding layers' rope: rope_parameters["sliding_attention"] (transformers 5), else the older
    /// rope_local_base_freq (default 10000) without scaling.
    /// </summary>
    private static RopeConfig LocalRope(ModelConfig config)
    {
        if (config.Fields.Object("rope_parameters")?.Object("sliding_attention") is not null)
            return RopeConfig.Parse(config.Fields, "sliding_attention");
        return new RopeConfig(RopeType.Default, config.Fields.OptionalDouble("rope_local_base_freq") ?? 10000.0);
    }
}
