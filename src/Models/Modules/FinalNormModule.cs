using Converter.Compute;
using Converter.Models.Forward;

namespace Converter.Models.Modules;

/// <summary>
/// model.norm: the norm between the last decoder block and the head, run on the blocks' backend, so that on a GPU
/// it normalizes calibration states held there in place instead of bringing 8 GB of them to the host and back (an
/// 8B at 250 × 2048 tokens).
/// </summary>
public sealed class FinalNormModule(string name, int hiddenSize, NormKind kind, float eps, IForwardBackend? backend = null) : ModelModule(name)
{
    private readonly IForwardBackend _backend = backend ?? HostForwardPass.Instance;
    private float[]? _weight;

    public override IEnumerable<string> TensorNames => [Models.TensorNames.Weight(Name)];

    public override bool IsLoaded => _weight != null;

    public override void Load(IWeightSource weights) => _weight = WeightLoader.Read(weights.Tensors, Models.TensorNames.Weight(Name), hiddenSize);

    public override void Release() => _weight = null;

    public override SequenceBatch Forward(SequenceBatch batch, ILinearInputObserver? observer = null)
    {
        EnsureLoaded();
        var x = batch.RequireValues(Name);
        return batch.WithValues(_backend.Run(x, Normalize));
    }

    public override ResidentOutput? TryForward(ResidentStates states, IReadOnlyList<int> rows, ILinearInputObserver? observer, ResidentRun run)
    {
        if (_backend is not IResidentForwardBackend resident || !resident.Runs(states))
            return null;
        EnsureLoaded();
        if (states.Width != hiddenSize)
            throw new ArgumentException($"{Name}: hidden states of width {states.Width} are not {hiddenSize} wide", nameof(states));
        return resident.Run(states, rows, run, Normalize);
    }

    private Activations Normalize(IForwardPass pass, Activations x) => pass.Norm(x, kind, _weight!, eps);
}
