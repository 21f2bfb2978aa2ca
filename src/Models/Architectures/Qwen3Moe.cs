using Converter.Compute;

namespace Converter.Models.Architectures;

/// <summary>
/// Qwen3-MoE (modeling_qwen3_moe.py): Qwen3's attention (q/k norms); layer i's MLP is a mixture of experts unless i
/// is in mlp_only_layers or (i + 1) is not a multiple of decoder_sparse_step, when it is the dense MLP of
/// intermediate_size. Softmax router, top-k, renormalized only with norm_topk_prob (default false).
/// </summary>
internal static class Qwen3Moe
{
    public static ArchitectureDefinition Definition { get; } = new("Qwen3MoeForCausalLM", "qwen3_moe", config =>
        DecoderFields.Base(config, "Qwen3MoeForCausalLM", LlamaFamily.QwenLayers(config)) with
        {
            QkvBias = DecoderFields.Flag(config, "attention_bias"),
            OutputBias = DecoderFields.Flag(config, "attention_bias"),
            QkNorm = QkNormPlacement.PerHead,
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
            Moe = new MixtureOfExperts
            {
                // Qwen3MoeConfig maps num_experts to num_local_experts; checkpoints carry either name.
                Router = DecoderFields.Router(config, config.Fields.Has("num_experts") ? "num_experts" : "num_local_experts", RouterScoring.Softmax,
                    normalizeTopK: DecoderFields.Flag(config, "norm_topk_prob")),
                ExpertIntermediateSize = config.Fields.RequiredDimension("moe_intermediate_size"),
                SparseLayers = SparseLayers(config),
                Module = "mlp",
            },
        });

    /// <summary>Qwen3MoeDecoderLayer's rule (num_experts > 0 holds: the router requires it).</summary>
    private static bool[] SparseLayers(Formats.HuggingFace.ModelConfig config)
    {
        int step = config.Fields.OptionalInt("decoder_sparse_step") ?? 1;
        if (step <= 0)
            throw config.Fields.Error($"decoder_sparse_step is {step}, expected a positive integer");
        var denseOnly = config.Fields.OptionalIntList("mlp_only_layers") ?? [];
        return Enumerable.Range(0, config.NumHiddenLayers).Select(i => !denseOnly.Contains(i) && (i + 1) % step == 0).ToArray();
    }
}
