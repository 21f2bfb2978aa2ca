using Converter.Compute;

namespace Converter.Models.Architectures;

/// <summary>
/// GLM-4.5 / GLM-4-MoE (modeling_glm4_moe.py): Llama-style pre-norm blocks with q/k/v bias (o_proj none), optional
/// per-head q/k norms and partial rotary on halves (not GLM-4's interleaved pairs); from layer first_k_dense_replace
/// on, the MLP is a mixture of experts: sigmoid scores, experts chosen by score + e_score_correction_bias, weighted
/// by score (renormalized with norm_topk_prob, + 1e-20) times routed_scaling_factor, plus shared experts of
/// n_shared_experts · moe_intermediate_size on every token. Experts may be limited to the best n_group groups
/// (<see cref="DecoderFields.WithGroups"/>).
/// </summary>
internal static class Glm4Moe
{
    public static ArchitectureDefinition Definition { get; } = new("Glm4MoeForCausalLM", "glm4_moe", config =>
        DecoderFields.Base(config, "Glm4MoeForCausalLM", DecoderFields.Uniform(config, window: null)) with
        {
            QkvBias = DecoderFields.Flag(config, "attention_bias"),
            QkNorm = DecoderFields.Flag(config, "use_qk_norm") ? QkNormPlacement.PerHead : QkNormPlacement.None,
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
            Moe = new MixtureOfExperts
            {
                // Glm4MoeMoE.route_tokens_to_experts; its defaults differ between transformers and exllamav3
                // (routed_scaling_factor 1.0 vs 2.5), so the scale must be stated.
                Router = DecoderFields.WithGroups(config, DecoderFields.Router(config, "n_routed_experts", RouterScoring.Sigmoid,
                    config.Fields.OptionalBool("norm_topk_prob") ?? true, (float)config.Fields.RequiredDouble("routed_scaling_factor"), normEpsilon: 1e-20f)),
                ExpertIntermediateSize = config.Fields.RequiredDimension("moe_intermediate_size"),
                SparseLayers = SparseLayers(config),
                Module = "mlp",
                SharedIntermediateSize = config.Fields.RequiredDimension("moe_intermediate_size") * (config.Fields.OptionalInt("n_shared_experts") ?? 1),
                CorrectionBias = "e_score_correction_bias",
            },
        });

    /// <summary>Layers from first_k_dense_replace on.</summary>
    internal static bool[] SparseLayers(Formats.HuggingFace.ModelConfig config)
    {
        int dense = config.Fields.RequiredInt("first_k_dense_replace");
        return Enumerable.Range(0, config.NumHiddenLayers).Select(i => i >= dense).ToArray();
    }
}
