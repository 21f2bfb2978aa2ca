using Converter.Compute;
using Converter.Models.Forward;

namespace Converter.Models.Modules;

/// <summary>The MLP half of a decoder block: down(act(gate(x)) ⊙ up(x)), gate and up possibly one fused gate_up_proj.</summary>
public sealed class GatedMlp
{
    private readonly TransformerSpec _spec;

    public GatedMlp(string prefix, TransformerSpec spec, IDenseAlgebra? algebra = null)
    {
        _spec = spec;
        Prefix = prefix;
        if (spec.FusedGateUp)
        {
            // Phi-3 and GLM-4 chunk gate_up_proj's output in two along the features: gate first, then up.
            string fused = TensorNames.Weight(prefix + ".gate_up_proj");
            int rows = 2 * spec.IntermediateSize;
            Gate = new Linear(prefix + ".gate_proj", spec.HiddenSize, spec.IntermediateSize, false, fused, algebra, new FusedRows(rows, 0));
            Up = new Linear(prefix + ".up_proj", spec.HiddenSize, spec.IntermediateSize, false, fused, algebra, new FusedRows(rows, spec.IntermediateSize));
        }
        else
        {
            Gate = new Linear(prefix + ".gate_proj", spec.HiddenSize, spec.IntermediateSize, spec.MlpBias, algebra: algebra);
            Up = new Linear(prefix + ".up_proj", spec.HiddenSize, spec.IntermediateSize, spec.MlpBias, algebra: algebra);
        }
        Down = new Linear(prefix + ".down_proj", spec.IntermediateSize, spec.HiddenSize, spec.MlpBias, algebra: algebra);
    }

    /// <summary><c>model.layers.N.mlp</c>.</summary>
    public string Prefix { get; }

    public Linear Gate { get; }

    public Linear Up { get; }

    public Linear Down { get; }

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

    /// <summary>MLP output (rows·tokens, hidden) for its input <paramref name="x"/>.</summary>
    public Activations Forward(IForwardPass pass, Activations x, LinearGroup input, LinearGroup output, ILinearInputObserver? observer)
    {
        pass.Observe(observer, input, x);
        var gate = pass.Linear(Gate, x);
        var up = pass.Linear(Up, x);
        var activated = pass.Gate(gate, up, _spec.Activation);
        pass.Observe(observer, output, activated);
        return pass.Linear(Down, activated);
    }
}
