namespace Converter.Formats.HuggingFace;

/// <summary>Decoder architectures we can convert; all are pre-norm RMSNorm + RoPE attention + SiLU-gated MLP.</summary>
public enum ModelArchitecture
{
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
}

/// <summary>Where an attention projection's bias comes from, per architecture.</summary>
public enum BiasRule
{
    Never,
    Always,
    /// <summary>The config's <c>attention_bias</c> flag (default false).</summary>
    FromConfig,
}

/// <summary>
/// One row per supported architecture: its transformers class name and model_type, and the structural facts
/// that differ between them, read from each transformers modeling file (modeling_llama/mistral/qwen2/qwen3.py).
/// </summary>
public sealed record ArchitectureSpec(
    ModelArchitecture Architecture,
    string HfName,
    string ModelType,
    BiasRule QkvBias,
    BiasRule OutputBias,
    bool HasQkNorm,
    bool HonorsMlpBias)
{
    public static IReadOnlyList<ArchitectureSpec> All { get; } =
    [
        // LlamaAttention: q/k/v/o_proj bias = config.attention_bias; LlamaMLP: bias = config.mlp_bias.
        new(ModelArchitecture.Llama, "LlamaForCausalLM", "llama", BiasRule.FromConfig, BiasRule.FromConfig, HasQkNorm: false, HonorsMlpBias: true),
        // MistralAttention: every projection bias=False.
        new(ModelArchitecture.Mistral, "MistralForCausalLM", "mistral", BiasRule.Never, BiasRule.Never, HasQkNorm: false, HonorsMlpBias: false),
        // Qwen2Attention: q/k/v_proj bias=True always, o_proj bias=False.
        new(ModelArchitecture.Qwen2, "Qwen2ForCausalLM", "qwen2", BiasRule.Always, BiasRule.Never, HasQkNorm: false, HonorsMlpBias: false),
        // Qwen3Attention: q/k/v/o bias = config.attention_bias; RMSNorm over head_dim on q and k (q_norm, k_norm).
        new(ModelArchitecture.Qwen3, "Qwen3ForCausalLM", "qwen3", BiasRule.FromConfig, BiasRule.FromConfig, HasQkNorm: true, HonorsMlpBias: false),
    ];

    public static ArchitectureSpec Of(ModelArchitecture architecture) => All.First(s => s.Architecture == architecture);

    public static ArchitectureSpec? FindByHfName(string name) => All.FirstOrDefault(s => s.HfName == name);

    public static ArchitectureSpec? FindByModelType(string modelType) => All.FirstOrDefault(s => s.ModelType == modelType);
}
