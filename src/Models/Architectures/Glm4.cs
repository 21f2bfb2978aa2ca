using Converter.Compute;

namespace Converter.Models.Architectures;

/// <summary>
/// GLM-4 (modeling_glm4.py): norms before and after both halves (input, post_self_attn, post_attention, post_mlp),
/// q/k/v bias, interleaved partial rotary (pairs 2i, 2i+1 over the first rotary dims), gate and up fused.
/// </summary>
internal static class Glm4
{
    public static ArchitectureDefinition Definition { get; } = new("Glm4ForCausalLM", "glm4", config =>
        DecoderFields.Base(config, "Glm4ForCausalLM", DecoderFields.Uniform(config, window: null)) with
        {
            BlockNorms = new BlockNorms("input_layernorm", "post_self_attn_layernorm", "post_attention_layernorm", "post_mlp_layernorm"),
            QkvBias = DecoderFields.Flag(config, "attention_bias"),
            RotaryPairing = RotaryPairing.Interleaved,
            FusedGateUp = true,
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
        });
}
