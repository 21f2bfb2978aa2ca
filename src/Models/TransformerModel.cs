using Converter.Compute;
using Converter.Formats.HuggingFace;
using Converter.Models.Modules;
using Converter.Models.Rotary;

namespace Converter.Models;

/// <summary>
/// A Llama-family causal LM as an ordered list of independently loadable modules: embedding, the decoder blocks,
/// final norm, head. Building it reads no weights.
/// </summary>
public sealed class TransformerModel
{
    private readonly ModelModule[] _modules;

    /// <param name="algebra">Where the linear layers' products run (the CPU when null).</param>
    /// <param name="blocks">Runs each decoder block in one call (a GPU); null runs them op by op through <paramref name="algebra"/>.</param>
    public TransformerModel(TransformerSpec spec, IDenseAlgebra? algebra = null, IDecoderBlockForward? blocks = null)
    {
        Spec = spec;
        Rotary = new RotaryEmbedding(spec.Rope, spec.HeadDim);
        Embedding = new EmbeddingModule(spec.VocabSize, spec.HiddenSize);
        Layers = Enumerable.Range(0, spec.Layers).Select(i => new DecoderBlock(i, spec, Rotary, algebra, blocks)).ToArray();
        FinalNorm = new FinalNormModule(spec.HiddenSize, spec.RmsNormEps);
        Head = new LmHeadModule(spec.HiddenSize, spec.VocabSize, spec.TiedEmbeddings, algebra);
        _modules = [Embedding, .. Layers, FinalNorm, Head];
    }

    public static TransformerModel FromConfig(ModelConfig config, IDenseAlgebra? algebra = null, IDecoderBlockForward? blocks = null) =>
        new(TransformerSpec.From(config), algebra, blocks);

    public TransformerSpec Spec { get; }

    public RotaryEmbedding Rotary { get; }

    public EmbeddingModule Embedding { get; }

    public IReadOnlyList<DecoderBlock> Layers { get; }

    public FinalNormModule FinalNorm { get; }

    public LmHeadModule Head { get; }

    /// <summary>Embedding, layers 0..N−1, final norm, head — the order a forward pass runs them.</summary>
    public IReadOnlyList<ModelModule> Modules => _modules;

    /// <summary>Position of <paramref name="module"/> in <see cref="Modules"/>, or −1.</summary>
    public int IndexOf(ModelModule module) => Array.IndexOf(_modules, module);
}
