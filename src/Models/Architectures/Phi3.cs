namespace Converter.Models.Architectures;

/// <summary>
/// Phi-3 and Phi-4-mini (modeling_phi3.py): Llama's block with q, k, v fused in qkv_proj and gate, up in gate_up_proj
/// (split here by rows), partial rotary and LongRoPE scaling; a configured sliding_window applies to every layer.
/// </summary>
internal static class Phi3
{
    public static ArchitectureDefinition Definition { get; } = new("Phi3ForCausalLM", "phi3", config =>
        DecoderFields.Base(config, "Phi3ForCausalLM", DecoderFields.Uniform(config, config.Fields.OptionalInt("sliding_window"))) with
        {
            FusedQkv = true,
            FusedGateUp = true,
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
        });
}
