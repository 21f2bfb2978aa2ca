using Converter.Models;

namespace Converter.Models.Architectures;

/// <summary>
/// Llama, Mistral, Qwen2 and Qwen3: pre-norm RMSNorm blocks, full RoPE, SwiGLU; they differ in biases, q/k norms and
/// Mistral's window (modeling_llama/mistral/qwen2/qwen3.py).
/// </summary>
internal static class LlamaFamily
{
    // LlamaAttention: q/k/v/o_proj bias = config.attention_bias; LlamaMLP: bias = config.mlp_bias.
    public static ArchitectureDefinition Llama { get; } = new("LlamaForCausalLM", "llama", config =>
        DecoderFields.Base(config, "LlamaForCausalLM", DecoderFields.Uniform(config, window: null)) with
        {
            QkvBias = DecoderFields.Flag(config, "attention_bias"),
            OutputBias = DecoderFields.Flag(config, "attention_bias"),
            MlpBias = DecoderFields.Flag(config, "mlp_bias"),
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
        });

    // MistralAttention: every projection bias=False; sliding_window on every layer when set.
    public static ArchitectureDefinition Mistral { get; } = new("MistralForCausalLM", "mistral", config =>
        DecoderFields.Base(config, "MistralForCausalLM", DecoderFields.Uniform(config, config.Fields.OptionalInt("sliding_window"))) with
        {
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
        });

    // Qwen2Attention: q/k/v_proj bias=True always, o_proj bias=False.
    public static ArchitectureDefinition Qwen2 { get; } = new("Qwen2ForCausalLM", "qwen2", config =>
        DecoderFields.Base(config, "Qwen2ForCausalLM", QwenLayers(config)) with
        {
            QkvBias = true,
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
        });

    // Qwen3Attention: q/k/v/o bias = config.attention_bias; RMSNorm over head_dim on q and k (q_norm, k_norm).
    public static ArchitectureDefinition Qwen3 { get; } = new("Qwen3ForCausalLM", "qwen3", config =>
        DecoderFields.Base(config, "Qwen3ForCausalLM", QwenLayers(config)) with
        {
            QkvBias = DecoderFields.Flag(config, "attention_bias"),
            OutputBias = DecoderFields.Flag(config, "attention_bias"),
            QkNorm = QkNormPlacement.PerHead,
            Activation = DecoderFields.Activation(config, "hidden_act", "silu"),
        });

    /// <summary>Qwen's window applies only to some layers (max_window_layers); rather than run it wrongly, refuse it.</summary>
    internal static IReadOnlyList<LayerAttention> QwenLayers(Formats.HuggingFace.ModelConfig config) =>
        DecoderFields.Flag(config, "use_sliding_window")
            ? throw config.Fields.Error("use_sliding_window = true is not supported")
            : DecoderFields.Uniform(config, window: null);
}
