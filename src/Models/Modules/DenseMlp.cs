using Converter.Compute;
using Converter.Models.Forward;

namespace Converter.Models.Modules;

/// <summary>A decoder block's dense MLP, <c>model.layers.N.mlp</c>: gate/up read the MLP input, down the activation.</summary>
public sealed class DenseMlp : IFeedForward
{
    /// <param name="module">The decoder block, the owner of the linear groups.</param>
    public DenseMlp(string module, TransformerSpec spec, IDenseAlgebra? algebra = null)
    {
        Mlp = GatedMlp.Dense(module + ".mlp", spec, algebra);
        LinearGroups =
        [
            new LinearGroup(module, LinearSite.MlpInput, [Mlp.Gate, Mlp.Up]),
            new LinearGroup(module, LinearSite.MlpOutput, [Mlp.Down]),
        ];
    }

    public GatedMlp Mlp { get; }

    public IReadOnlyList<LinearGroup> LinearGroups { get; }

    public IEnumerable<string> OtherTensors => [];

    public void Load(IWeightSource weights) => Mlp.Load(weights);

    public void Release() => Mlp.Release();

    public Activations Forward(IForwardPass pass, Activations x, ILinearInputObserver? observer) =>
        Mlp.Forward(pass, x, LinearGroups[0], LinearGroups[1], observer);

    public void Capture(IForwardPass pass, Activations x, ILinearInputObserver observer) =>
        Mlp.Activated(pass, x, LinearGroups[0], LinearGroups[1], observer);
}
