using Converter.Compute;
using Converter.Models.Forward;

namespace Converter.Models.Modules;

/// <summary>
/// A gated MLP, down(act(gate(x)) ⊙ up(x)): a dense block's MLP, a routed expert or a shared expert. Gate and up may
/// be one fused gate_up_proj in the checkpoint.
/// </summary>
public sealed class GatedMlp
{
    private readonly MlpActivation _activation;

    /// <param name="prefix">The MLP's module, e.g. <c>model.layers.N.mlp</c> or <c>….block_sparse_moe.experts.E</c>.</param>
    /// <param name="fusedGateUp">The checkpoint holds gate and up as one <c>gate_up_proj</c>, gate rows first.</param>
    public GatedMlp(string prefix, int hidden, int intermediate, MlpActivation activation, MlpNames names, bool bias = false, bool fusedGateUp = false,
        IDenseAlgebra? algebra = null)
    {
        _activation = activation;
        Prefix = prefix;
        if (fusedGateUp)
        {
            // Phi-3 and GLM-4 chunk gate_up_proj's output in two along the features: gate first, then up.
            string fused = TensorNames.Weight(prefix + ".gate_up_proj");
            Gate = new Linear($"{prefix}.{names.Gate}", hidden, intermediate, false, fused, algebra, new FusedRows(2 * intermediate, 0));
            Up = new Linear($"{prefix}.{names.Up}", hidden, intermediate, false, fused, algebra, new FusedRows(2 * intermediate, intermediate));
        }
        else
        {
            Gate = new Linear($"{prefix}.{names.Gate}", hidden, intermediate, bias, algebra: algebra);
            Up = new Linear($"{prefix}.{names.Up}", hidden, intermediate, bias, algebra: algebra);
        }
        Down = new Linear($"{prefix}.{names.Down}", intermediate, hidden, bias, algebra: algebra);
    }

    private GatedMlp(string prefix, MlpActivation activation, Linear gate, Linear up, Linear down)
    {
        _activation = activation;
        Prefix = prefix;
        Gate = gate;
        Up = up;
        Down = down;
    }

    /// <summary>
    /// Expert <paramref name="expert"/> of a mixture whose experts are fused 3-D tensors with biases under
    /// <paramref name="experts"/> (<c>….mlp.experts</c>, gpt-oss, <see cref="MixtureOfExperts.FusedExperts"/>): gate
    /// and up are the even and odd columns of gate_up_proj, down is the expert's down_proj; the linears are named
    /// <c>experts.E.gate_proj</c>, <c>up_proj</c>, <c>down_proj</c>.
    /// </summary>
    public static GatedMlp FusedExpert(string experts, int expert, int count, int hidden, int intermediate, MlpActivation activation, IDenseAlgebra? algebra = null)
    {
        string gateUp = experts + ".gate_up_proj", down = experts + ".down_proj", prefix = $"{experts}.{expert}";
        var names = MlpNames.Standard;
        return new GatedMlp(prefix, activation,
            new Linear($"{prefix}.{names.Gate}", hidden, intermediate, true, gateUp, algebra,
                expert: new ExpertSlice(count, expert, 2 * intermediate, 0, 2, gateUp + "_bias")),
            new Linear($"{prefix}.{names.Up}", hidden, intermediate, true, gateUp, algebra,
                expert: new ExpertSlice(count, expert, 2 * intermediate, 1, 2, gateUp + "_bias")),
            new Linear($"{prefix}.{names.Down}", intermediate, hidden, true, down, algebra,
                expert: new ExpertSlice(count, expert, hidden, 0, 1, down + "_bias")));
    }

    /// <summary>A dense block's MLP as <paramref name="spec"/> describes it, under <paramref name="prefix"/>.</summary>
    public static GatedMlp Dense(string prefix, TransformerSpec spec, IDenseAlgebra? algebra = null) =>
        new(prefix, spec.HiddenSize, spec.IntermediateSize, spec.Activation, MlpNames.Standard, spec.MlpBias, spec.FusedGateUp, algebra);

    public string Prefix { get; }

    public Linear Gate { get; }

    public Linear Up { get; }

    public Linear Down { get; }

    public IEnumerable<Linear> Linears => [Gate, Up, Down];

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

    /// <summary>The MLP's output (rows, hidden) for its input <paramref name="x"/>.</summary>
    /// <param name="input">The group gate and up belong to, shown x here; null when the caller has shown it already (a mixture of experts shows its input once for all experts).</param>
    public Activations Forward(IForwardPass pass, Activations x, LinearGroup? input, LinearGroup output, ILinearInputObserver? observer) =>
        pass.Linear(Down, Activated(pass, x, input, output, observer));

    /// <summary>act(gate(x)) ⊙ up(x), down's input, shown to the observer as <paramref name="output"/>'s (after x as <paramref name="input"/>'s).</summary>
    public Activations Activated(IForwardPass pass, Activations x, LinearGroup? input, LinearGroup output, ILinearInputObserver? observer)
    {
        if (input is not null)
            pass.Observe(observer, input, x);
        var gate = pass.Linear(Gate, x);
        var up = pass.Linear(Up, x);
        var activated = pass.Gate(gate, up, _activation);
        pass.Observe(observer, output, activated);
        return activated;
    }
}
