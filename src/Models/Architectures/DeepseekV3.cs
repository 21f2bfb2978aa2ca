using Converter.Compute;
using Converter.Formats.HuggingFace;

namespace Converter.Models.Architectures;

/// <summary>
/// DeepSeek-V3 / R1 and the smaller models of the same class (modeling_deepseek_v3.py): Llama-style pre-norm blocks
/// with multi-head latent attention (<see cref="LatentAttentionSpec"/>: optional q LoRA, kv LoRA with its norm, heads
/// split into a rope part of qk_rope_head_dim and a nope part of qk_nope_head_dim, values of v_head_dim; neighbouring
/// pairs rotate with rope_interleave); score scale (qk_nope + qk_rope)^−½, times mscale(factor, mscale_all_dim)² under
/// YaRN. From layer first_k_dense_replace on, the MLP is a mixture of experts routed as GLM-4.5's (sigmoid, correction
/// bias, norm_topk_prob, routed_scaling_factor) with the n_group / topk_group limit, plus n_shared_experts ·
/// moe_intermediate_size of shared experts. Multi-token-prediction layers (num_nextn_predict_layers, stored as
/// layers past num_hidden_layers) are not part of the model: exllamav3 builds no module for them and writes none of
/// their tensors, and neither do we (<see cref="TransformerModel.UnreadTensors"/>).
/// </summary>
internal static class DeepseekV3
{
    public static ArchitectureDefinition Definition { get; } = new("DeepseekV3ForCausalLM", "deepseek_v3", Describe);

    private static TransformerSpec Describe(ModelConfig config)
    {
        var f = config.Fields;
        var layers = DecoderFields.Uniform(config, window: null);
        var rope = layers[0].Rope!;
        if (rope.Type is not (RopeType.Default or RopeType.Yarn))
            throw f.Error($"rope type {rope.Type} is not supported for DeepseekV3ForCausalLM in rope_parameters/rope_scaling (supported: default, yarn)");
        RefuseOtherThan(f, "scoring_func", "sigmoid");
        RefuseOtherThan(f, "topk_method", "noaux_tc");
        var mla = new LatentAttentionSpec(
            f.OptionalInt("q_lora_rank") is { } rank ? Positive(f, "q_lora_rank", rank) : null,
            f.RequiredPositiveInt("kv_lora_rank"),
            f.RequiredPositiveInt("qk_nope_head_dim"),
            f.RequiredPositiveInt("qk_rope_head_dim"),
            f.RequiredPositiveInt("v_head_dim"),
            DecoderFields.Flag(config, "attention_bias"));
        if (mla.RopeDim % 2 != 0)
            throw f.Error($"qk_rope_head_dim is {mla.RopeDim}, expected an even number");
        int experts = f.RequiredPositiveInt("n_routed_experts");
        return DecoderFields.Base(config, "DeepseekV3ForCausalLM", layers) with
        {
            HeadDim = mla.QkHeadDim,
            KvHeads = config.NumAttentionHeads,
            RotaryDims = mla.RopeDim,
            RotaryPairing = (f.OptionalBool("rope_interleave") ?? true) ? RotaryPairing.Interleaved : RotaryPairing.Halves,
            LatentAttention = mla,
            AttentionScale = Scale(mla, rope),
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
            Moe = new MixtureOfExperts
            {
                // DeepseekV3Config's defaults: norm_topk_prob true, routed_scaling_factor 2.5, n_shared_experts 1.
                Router = DecoderFields.WithGroups(config, DecoderFields.Router(config, "n_routed_experts", RouterScoring.Sigmoid,
                    f.OptionalBool("norm_topk_prob") ?? true, (float)(f.OptionalDouble("routed_scaling_factor") ?? 2.5), normEpsilon: 1e-20f)),
                ExpertIntermediateSize = f.RequiredPositiveInt("moe_intermediate_size"),
                SparseLayers = Glm4Moe.SparseLayers(config),
                Module = "mlp",
                SharedIntermediateSize = f.RequiredPositiveInt("moe_intermediate_size") * (f.OptionalInt("n_shared_experts") ?? 1),
                CorrectionBias = "e_score_correction_bias",
            },
        };
    }

    /// <summary>
    /// DeepseekV3Attention.scaling: qk_head_dim^−½; under YaRN with mscale_all_dim, times yarn_get_mscale(factor,
    /// mscale_all_dim)² with the factor as the config writes it (once for q, once for k, as exllamav3 notes too).
    /// </summary>
    private static float Scale(LatentAttentionSpec mla, RopeConfig rope)
    {
        double scale = 1.0 / Math.Sqrt(mla.QkHeadDim);
        if (rope.Yarn is { MscaleAllDim: { } all } yarn && all != 0)
        {
            double m = YarnRopeScaling.Mscale(yarn.Factor, all);
            scale *= m * m;
        }
        return (float)scale;
    }

    private static int Positive(ConfigFields f, string key, int value) =>
        value > 0 ? value : throw f.Error($"{key} is {value}, expected a positive integer or null");

    private static void RefuseOtherThan(ConfigFields f, string key, string supported)
    {
        if (f.OptionalString(key) is { } value && value != supported)
            throw f.Error($"unsupported {key} '{value}' (supported: {supported})");
    }
}
