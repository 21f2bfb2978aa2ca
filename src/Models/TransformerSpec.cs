using Converter.Compute;
using Converter.Formats.HuggingFace;

namespace Converter.Models;

/// <summary>
/// Everything the forward pass needs to know about a decoder-only transformer, as plain data. Architectures differ
/// only in these fields (a family's declaration in <c>Architectures/</c> fills them from its config.json), so the
/// modules and both backends branch on features, never on the architecture's name.
/// </summary>
public sealed record TransformerSpec
{
    /// <summary>The transformers class, e.g. <c>LlamaForCausalLM</c>.</summary>
    public required string ArchitectureName { get; init; }

    public required int HiddenSize { get; init; }

    public required int IntermediateSize { get; init; }

    public required int Layers { get; init; }

    public required int Heads { get; init; }

    public required int KvHeads { get; init; }

    public required int HeadDim { get; init; }

    public required int VocabSize { get; init; }

    /// <summary>The normalization of every block norm, q/k norm and the final norm.</summary>
    public NormKind Norm { get; init; } = NormKind.Rms;

    /// <summary>The norms' epsilon; transformers adds it to a float32 variance, i.e. as a float32.</summary>
    public required float NormEps { get; init; }

    /// <summary>Which norms a decoder block has and their checkpoint names.</summary>
    public BlockNorms BlockNorms { get; init; } = BlockNorms.PreNorm;

    /// <summary>
    /// Attention and MLP both read the block's one input norm and their outputs are added to the residual together
    /// (Cohere): out = x + attn(n) + mlp(n).
    /// </summary>
    public bool ParallelBlock { get; init; }

    public bool QkvBias { get; init; }

    public bool OutputBias { get; init; }

    public bool MlpBias { get; init; }

    /// <summary>Where queries and keys are normalized before RoPE, if at all.</summary>
    public QkNormPlacement QkNorm { get; init; }

    /// <summary>Score scale; null for 1/√head_dim (Gemma sets query_pre_attn_scalar^−½).</summary>
    public float? AttentionScale { get; init; }

    /// <summary>Attention-logit soft-capping (Gemma 2), null when absent.</summary>
    public float? AttentionSoftCap { get; init; }

    /// <summary>
    /// Each attention has learned sinks, <c>self_attn.sinks</c> (gpt-oss): one logit per query head that joins the
    /// softmax's denominator.
    /// </summary>
    public bool AttentionSinks { get; init; }

    /// <summary>Dimensions of each head that RoPE rotates (partial rotary rotates fewer than <see cref="HeadDim"/>).</summary>
    public int RotaryDims { get; init; }

    public RotaryPairing RotaryPairing { get; init; } = RotaryPairing.Halves;

    /// <summary>Per layer: its attention window and rotary frequencies (null for NoPE layers).</summary>
    public required IReadOnlyList<LayerAttention> LayerAttention { get; init; }

    public MlpActivation Activation { get; init; } = MlpActivation.Silu;

    /// <summary>
    /// Multi-head latent attention (DeepSeek-V3) in place of q/k/v projections, or null. With it <see cref="HeadDim"/>
    /// is the query/key head width (nope + rope) and <see cref="RotaryDims"/> the rope part.
    /// </summary>
    public LatentAttentionSpec? LatentAttention { get; init; }

    /// <summary>The mixture of experts that replaces the MLP in its sparse layers, or null for a dense model.</summary>
    public MixtureOfExperts? Moe { get; init; }

    /// <summary>Whether layer <paramref name="layer"/>'s MLP is the mixture of experts.</summary>
    public bool IsSparse(int layer) => Moe is { } moe && moe.SparseLayers[layer];

    /// <summary>The checkpoint stores q, k and v as one <c>qkv_proj</c> (Phi-3), split here by rows.</summary>
    public bool FusedQkv { get; init; }

    /// <summary>The checkpoint stores gate and up as one <c>gate_up_proj</c>, gate rows first (Phi-3, GLM-4).</summary>
    public bool FusedGateUp { get; init; }

    /// <summary>Multiplies the embedding output (Gemma: √hidden), 1 otherwise.</summary>
    public float EmbeddingScale { get; init; } = 1f;

    /// <summary>Multiplies the logits (Cohere's logit_scale), 1 otherwise.</summary>
    public float LogitScale { get; init; } = 1f;

    /// <summary>Final-logit soft-capping (Gemma 2/3), null when absent.</summary>
    public float? FinalLogitSoftCap { get; init; }

    public bool TiedEmbeddings { get; init; }

    /// <summary>Checkpoint tensor names of the embedding, layers, final norm and head.</summary>
    public TensorNames Names { get; init; } = TensorNames.Standard;

    /// <summary>Reads the fields from a parsed config.json through its architecture's declaration.</summary>
    public static TransformerSpec From(ModelConfig config) => Architectures.ArchitectureCatalog.Describe(config);

    /// <summary>Width of the query projection's output (Qwen3 lets it differ from <see cref="HiddenSize"/>).</summary>
    public int QueryWidth => Heads * HeadDim;

    /// <summary>Width of each of the key and value projections' outputs.</summary>
    public int KeyValueWidth => KvHeads * HeadDim;
}

/// <summary>Where queries and keys are normalized (with the model's <see cref="NormKind"/>).</summary>
public enum QkNormPlacement
{
    None,

    /// <summary>Over each head vector, weight of head_dim (Qwen3, Gemma 3): <c>q_norm</c>, <c>k_norm</c>.</summary>
    PerHead,

    /// <summary>Over the whole projection output, weight of heads·head_dim (OLMo 2/3).</summary>
    WholeProjection,
}

/// <summary>
/// The norms of a decoder block by where they act, each the checkpoint module name under the layer (e.g.
/// <c>input_layernorm</c>) or null when absent: before attention, on the attention output, before the MLP, on the
/// MLP output.
/// </summary>
public sealed record BlockNorms(string? AttentionInput, string? AttentionOutput, string? MlpInput, string? MlpOutput)
{
    /// <summary>Llama: input_layernorm before attention, post_attention_layernorm before the MLP.</summary>
    public static BlockNorms PreNorm { get; } = new("input_layernorm", null, "post_attention_layernorm", null);

    public IEnumerable<string> Present => new[] { AttentionInput, AttentionOutput, MlpInput, MlpOutput }.OfType<string>();
}

/// <summary>One layer's attention: its window (null for full attention) and its rotary setting (null: no RoPE).</summary>
public sealed record LayerAttention(int? Window, RopeConfig? Rope);
