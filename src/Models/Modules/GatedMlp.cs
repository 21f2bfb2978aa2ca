using Converter.Compute;

namespace Converter.Models.Modules;

/// <summary>The MLP half of a decoder block: down(SiLU(gate(x)) ⊙ up(x)).</summary>
public sealed class GatedMlp(string prefix, TransformerSpec spec, IDenseAlgebra? algebra = null)
{
    /// <summary><c>model.layers.N.mlp</c>.</summary>
    public string Prefix { get; } = prefix;

    public Linear Gate { get; } = new(prefix + ".gate_proj", spec.HiddenSize, spec.IntermediateSize, spec.MlpBias, algebra: algebra);

    public Linear Up { get; } = new(prefix + ".up_proj", spec.HiddenSize, spec.IntermediateSize, spec.MlpBias, algebra: algebra);

    public Linear Down { get; } = new(prefix + ".down_proj", spec.IntermediateSize, spec.HiddenSize, spec.MlpBias, algebra: algebra);

    public void Load(IWeightSource weights)
    {
        weights.LoadLinear(Gate);
        weights.LoadLinear(Up);
        weights.LoadLinear(Down);
    }

    public void Release()
    {
        Gate.Release();
        Up.Release();
        Down.Release();
    }

    /// <summary>MLP output (rows·tokens, hidden) for the normed residual <paramref name="x"/>.</summary>
    public Matrix Forward(Matrix x, LinearGroup input, LinearGroup output, ILinearInputObserver? observer)
    {
        observer?.OnLinearInput(input, x);
        var gate = Gate.Forward(x);
        var up = Up.Forward(x);
        SwiGlu.Apply(gate.Data, up.Data, gate.Data);
        observer?.OnLinearInput(output, gate);
        return Down.Forward(gate);
    }
}
