using System.Numerics.Tensors;
using Converter.Compute;
using Converter.Models.Rotary;

namespace Converter.Models.Modules;

/// <summary>
/// model.layers.N, pre-norm: h = x + attn(norm₁(x)); out = h + mlp(norm₂(h)).
/// </summary>
public sealed class DecoderBlock : ModelModule
{
    private readonly TransformerSpec _spec;
    private readonly IDecoderBlockForward? _accelerated;
    private float[]? _inputNorm;
    private float[]? _postAttentionNorm;

    /// <param name="accelerated">Runs the whole block at once (a GPU) instead of op by op on the host; null for the host.</param>
    public DecoderBlock(int index, TransformerSpec spec, RotaryEmbedding rotary, IDenseAlgebra? algebra = null, IDecoderBlockForward? accelerated = null)
        : base(Models.TensorNames.Layer(index))
    {
        _spec = spec;
        _accelerated = accelerated;
        Index = index;
        Attention = new SelfAttention(Name + ".self_attn", spec, rotary, algebra);
        Mlp = new GatedMlp(Name + ".mlp", spec, algebra);
        LinearGroups =
        [
            new LinearGroup(Name, LinearSite.AttentionInput, [Attention.Q, Attention.K, Attention.V]),
            new LinearGroup(Name, LinearSite.AttentionOutput, [Attention.O]),
            new LinearGroup(Name, LinearSite.MlpInput, [Mlp.Gate, Mlp.Up]),
            new LinearGroup(Name, LinearSite.MlpOutput, [Mlp.Down]),
        ];
    }

    public int Index { get; }

    public TransformerSpec Spec => _spec;

    /// <summary>input_layernorm's weight (hidden); the block must be loaded.</summary>
    public ReadOnlyMemory<float> InputNorm => _inputNorm ?? throw new InvalidOperationException($"module {Name} is not loaded");

    /// <summary>post_attention_layernorm's weight (hidden); the block must be loaded.</summary>
    public ReadOnlyMemory<float> PostAttentionNorm => _postAttentionNorm ?? throw new InvalidOperationException($"module {Name} is not loaded");

    public SelfAttention Attention { get; }

    public GatedMlp Mlp { get; }

    public override IReadOnlyList<LinearGroup> LinearGroups { get; }

    private string InputNormTensor => Models.TensorNames.Weight(Name + ".input_layernorm");

    private string PostAttentionNormTensor => Models.TensorNames.Weight(Name + ".post_attention_layernorm");

    public override IEnumerable<string> TensorNames =>
        Linears.SelectMany(l => l.BiasTensor is { } b ? new[] { l.WeightTensor, b } : [l.WeightTensor])
            .Concat(Attention.NormTensors)
            .Append(InputNormTensor)
            .Append(PostAttentionNormTensor);

    public override bool IsLoaded => _inputNorm != null;

    public override void Load(IWeightSource weights)
    {
        try
        {
            Attention.Load(weights);
            Mlp.Load(weights);
            _postAttentionNorm = WeightLoader.Read(weights.Tensors, PostAttentionNormTensor, _spec.HiddenSize);
            // Set last: IsLoaded keys on it.
            _inputNorm = WeightLoader.Read(weights.Tensors, InputNormTensor, _spec.HiddenSize);
        }
        catch
        {
            // A load that failed halfway holds nothing, rather than some layers' weights.
            Release();
            throw;
        }
    }

    public override void Release()
    {
        _inputNorm = _postAttentionNorm = null;
        Attention.Release();
        Mlp.Release();
    }

    public override SequenceBatch Forward(SequenceBatch batch, ILinearInputObserver? observer = null)
    {
        EnsureLoaded();
        var x = batch.RequireValues(Name);
        if (_accelerated is not null)
            return batch.WithValues(_accelerated.Forward(this, batch, x, observer));
        var normed = new Matrix(x.Rows, x.Cols);
        RmsNorm.Apply(x.Data, _inputNorm!, _spec.RmsNormEps, normed.Data);
        var residual = Attention.Forward(normed, batch, LinearGroups[0], LinearGroups[1], observer);
        TensorPrimitives.Add(x.Data, residual.Data, residual.Data);

        RmsNorm.Apply(residual.Data, _postAttentionNorm!, _spec.RmsNormEps, normed.Data);
        var output = Mlp.Forward(normed, LinearGroups[2], LinearGroups[3], observer);
        TensorPrimitives.Add(residual.Data, output.Data, output.Data);
        return batch.WithValues(output);
    }
}
