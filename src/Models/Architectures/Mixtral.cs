using Converter.Compute;

namespace Converter.Models.Architectures;

/// <summary>
/// Mixtral (modeling_mixtral.py): Mistral's attention with a mixture of experts as every layer's MLP,
/// <c>block_sparse_moe</c>: softmax router, top-k experts, weights renormalized over the chosen ones, experts named
/// w1 (gate), w3 (up), w2 (down) of intermediate_size.
/// </summary>
internal static class Mixtral
{
    public static ArchitectureDefinition Definition { get; } = new("MixtralForCausalLM", "mixtral", config =>
        DecoderFields.Base(config, "MixtralForCausalLM", DecoderFields.Uniform(config, config.Fields.OptionalInt("sliding_window"))) with
        {
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
            Moe = new MixtureOfExperts
            {
                // MixtralSparseMoeBlock: softmax(logits, float32), top-k, routing_weights /= sum, always.
                Router = DecoderFields.Router(config, "num_local_experts", RouterScoring.Softmax, normalizeTopK: true),
                ExpertIntermediateSize = config.IntermediateSize,
                SparseLayers = Enumerable.Repeat(true, config.NumHiddenLayers).ToArray(),
                Module = "block_sparse_moe",
                ExpertNames = MlpNames.Mixtral,
            },
        });
}
