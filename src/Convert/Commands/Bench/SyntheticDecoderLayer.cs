using Converter.Compute;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Models.Forward;
using Converter.Models.Modules;
using Converter.Models.Rotary;

namespace Converter.Cli.Commands.Bench;

/// <summary>
/// One decoder layer of a named shape with random weights (uniform, variance 1/in, as the GPU tests use) for
/// benchmarks: the linears get their weights in memory, once, and every block built on them shares the same arrays
/// (so a GPU backend's weight cache uploads them once); the norms, which blocks read from a checkpoint, live in a
/// small temporary safetensors file.
/// </summary>
public sealed class SyntheticDecoderLayer : IWeightSource, IDisposable
{
    private static readonly RopeConfig LlamaRope = new(RopeType.Default, 500000.0);

    /// <summary>The shapes by name: llama-3-8b's layer, and a small one for tests.</summary>
    public static IReadOnlyDictionary<string, TransformerSpec> Shapes { get; } = new Dictionary<string, TransformerSpec>
    {
        ["llama-3-8b"] = Llama(hidden: 4096, intermediate: 14336, heads: 32, kvHeads: 8, headDim: 128),
        ["small"] = Llama(hidden: 256, intermediate: 512, heads: 4, kvHeads: 2, headDim: 64),
    };

    private readonly Dictionary<string, float[]> _weights = [];
    private readonly Random _rng;
    private readonly string _normFile;
    private readonly SafetensorsFile _norms;

    public SyntheticDecoderLayer(TransformerSpec spec, int seed)
    {
        Spec = spec;
        Rotary = spec.LayerAttention[0].Rope is { } rope ? new RotaryEmbedding(rope, spec.RotaryDims) : null;
        _rng = new Random(seed);
        var writer = new SafetensorsWriter();
        foreach (var name in NewBlock(null, null).TensorNames.Where(n => n.Contains("norm", StringComparison.Ordinal)))
            writer.AddFloat32(name, [spec.HiddenSize], Enumerable.Range(0, spec.HiddenSize).Select(_ => 1f + (_rng.NextSingle() - 0.5f) * 0.2f).ToArray());
        _normFile = Path.Combine(Path.GetTempPath(), $"trellis-bench-norms-{Guid.NewGuid():N}.safetensors");
        writer.Write(_normFile);
        _norms = SafetensorsFile.Open(_normFile);
    }

    public TransformerSpec Spec { get; }

    public RotaryEmbedding? Rotary { get; }

    public ITensorReader Tensors => _norms;

    /// <summary>A loaded block of this layer whose forward runs on <paramref name="backend"/> (products through <paramref name="algebra"/>).</summary>
    public DecoderBlock Block(IDenseAlgebra algebra, IForwardBackend backend)
    {
        var block = NewBlock(algebra, backend);
        block.Load(this);
        return block;
    }

    public void LoadLinear(Linear linear)
    {
        if (!_weights.TryGetValue(linear.Name, out var weight))
        {
            weight = new float[(long)linear.OutFeatures * linear.InFeatures];
            float scale = MathF.Sqrt(3f / linear.InFeatures);
            for (long i = 0; i < weight.LongLength; i++)
                weight[i] = (_rng.NextSingle() * 2 - 1) * scale;
            _weights[linear.Name] = weight;
        }
        linear.SetParameters(new Matrix(linear.OutFeatures, linear.InFeatures, weight), linear.HasBias ? new float[linear.OutFeatures] : null);
    }

    private DecoderBlock NewBlock(IDenseAlgebra? algebra, IForwardBackend? backend) => new(0, Spec, Rotary, algebra, backend);

    private static TransformerSpec Llama(int hidden, int intermediate, int heads, int kvHeads, int headDim) => new()
    {
        ArchitectureName = "LlamaForCausalLM",
        HiddenSize = hidden,
        IntermediateSize = intermediate,
        Layers = 1,
        Heads = heads,
        KvHeads = kvHeads,
        HeadDim = headDim,
        VocabSize = 128256,
        NormEps = 1e-5f,
        RotaryDims = headDim,
        LayerAttention = [new LayerAttention(null, LlamaRope)],
    };

    public void Dispose()
    {
        _norms.Dispose();
        File.Delete(_normFile);
    }
}
