using Converter.Compute;
using Converter.Formats.HuggingFace;
using Converter.Models.Forward;
using Converter.Models.Modules;
using Converter.Models.Rotary;

namespace Converter.Models;

/// <summary>
/// A decoder-only causal LM as an ordered list of independently loadable modules: embedding, the decoder blocks,
/// final norm, head. Building it reads no weights.
/// </summary>
public sealed class TransformerModel
{
    private readonly ModelModule[] _modules;

    /// <param name="algebra">Where the linear layers' products run (the CPU when null).</param>
    /// <param name="blocks">Where the decoder blocks' operations run with their activations (a GPU); null for the host.</param>
    public TransformerModel(TransformerSpec spec, IDenseAlgebra? algebra = null, IForwardBackend? blocks = null)
    {
        Spec = spec;
        // One rotary embedding per distinct setting, shared by the layers that use it (Gemma 3 has two).
        var rotaries = new Dictionary<RopeConfig, RotaryEmbedding>();
        RotaryEmbedding? RotaryOf(RopeConfig? rope) => rope is null ? null
            : rotaries.TryGetValue(rope, out var r) ? r : rotaries[rope] = new RotaryEmbedding(rope, spec.RotaryDims);
        Embedding = new EmbeddingModule(spec.Names.Embedding, spec.VocabSize, spec.HiddenSize, spec.EmbeddingScale);
        Layers = Enumerable.Range(0, spec.Layers)
            .Select(i => new DecoderBlock(i, spec, RotaryOf(spec.LayerAttention[i].Rope), algebra, blocks)).ToArray();
        FinalNorm = new FinalNormModule(spec.Names.FinalNorm, spec.HiddenSize, spec.Norm, spec.NormEps, blocks);
        Head = new LmHeadModule(spec, algebra);
        _modules = [Embedding, .. Layers, FinalNorm, Head];
    }

    public static TransformerModel FromConfig(ModelConfig config, IDenseAlgebra? algebra = null, IForwardBackend? blocks = null) =>
        new(TransformerSpec.From(config), algebra, blocks);

    public TransformerSpec Spec { get; }

    public EmbeddingModule Embedding { get; }

    public IReadOnlyList<DecoderBlock> Layers { get; }

    public FinalNormModule FinalNorm { get; }

    public LmHeadModule Head { get; }

    /// <summary>Embedding, layers 0..N−1, final norm, head — the order a forward pass runs them.</summary>
    public IReadOnlyList<ModelModule> Modules => _modules;

    /// <summary>
    /// The names among <paramref name="checkpointTensors"/> that no module reads (a multimodal checkpoint's vision tower
    /// and projector, for instance), in their order. A fused source tensor is read (by each linear it holds) and a tied
    /// head's own lm_head.weight is left out: the head reads the embedding, so that tensor only duplicates it. So are
    /// layers past num_hidden_layers (<see cref="IsBeyondLastLayer"/>).
    /// </summary>
    public IReadOnlyList<string> UnreadTensors(IEnumerable<string> checkpointTensors)
    {
        var read = _modules.SelectMany(m => m.TensorNames).ToHashSet(StringComparer.Ordinal);
        var tiedDuplicate = Spec.TiedEmbeddings ? TensorNames.Weight(Spec.Names.LmHead) : null;
        return checkpointTensors.Where(n => !read.Contains(n) && n != tiedDuplicate && !IsBeyondLastLayer(n)).ToList();
    }

    /// <summary>
    /// Whether <paramref name="tensor"/> belongs to a layer numbered num_hidden_layers or more: the multi-token-prediction
    /// layers of DeepSeek-V3 and GLM-4.5 (num_nextn_predict_layers) are stored so, outside the model's forward.
    /// exllamav3 writes only the tensors of the modules it builds (compile.py), none for them, so they are dropped
    /// rather than copied (for DeepSeek-V3 that is one more whole MoE layer, ~11 GB in FP8).
    /// </summary>
    public bool IsBeyondLastLayer(string tensor)
    {
        string prefix = Spec.Names.Model + ".layers.";
        if (!tensor.StartsWith(prefix, StringComparison.Ordinal))
            return false;
        int end = tensor.IndexOf('.', prefix.Length);
        return end > prefix.Length && int.TryParse(tensor.AsSpan(prefix.Length, end - prefix.Length), out int layer) && layer >= Spec.Layers;
    }

    /// <summary>Position of <paramref name="module"/> in <see cref="Modules"/>, or −1.</summary>
    public int IndexOf(ModelModule module) => Array.IndexOf(_modules, module);
}
