using Converter.Formats.HuggingFace;

namespace Converter.Models;

/// <summary>
/// Everything the forward pass needs to know about a Llama-family decoder, as plain data: the architectures differ
/// only in these fields (Qwen2: q/k/v bias; Qwen3: per-head q/k norms and a free head_dim; Llama 3.1: rope scaling;
/// tied embeddings), so the modules branch on features, never on the architecture's name.
/// </summary>
public sealed record TransformerSpec(
    string ArchitectureName,
    int HiddenSize,
    int IntermediateSize,
    int Layers,
    int Heads,
    int KvHeads,
    int HeadDim,
    int VocabSize,
    float RmsNormEps,
    bool QkvBias,
    bool OutputBias,
    bool MlpBias,
    bool QkNorm,
    bool TiedEmbeddings,
    int? SlidingWindow,
    RopeConfig Rope)
{
    /// <summary>Reads the fields from a parsed config.json (which has already validated them).</summary>
    public static TransformerSpec From(ModelConfig config) => new(
        config.Spec.HfName,
        config.HiddenSize,
        config.IntermediateSize,
        config.NumHiddenLayers,
        config.NumAttentionHeads,
        config.NumKeyValueHeads,
        config.HeadDim,
        config.VocabSize,
        // HF adds eps to a float32 variance, i.e. as a float32.
        (float)config.RmsNormEps,
        config.AttentionQkvBias,
        config.AttentionOutputBias,
        config.MlpBias,
        config.HasQkNorm,
        config.TieWordEmbeddings,
        config.SlidingWindow,
        config.Rope);

    /// <summary>Width of the query projection's output (Qwen3 lets it differ from <see cref="HiddenSize"/>).</summary>
    public int QueryWidth => Heads * HeadDim;

    /// <summary>Width of each of the key and value projections' outputs.</summary>
    public int KeyValueWidth => KvHeads * HeadDim;
}
