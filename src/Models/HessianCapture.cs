using Converter.Compute;
using Converter.Regularize.Hessian;

namespace Converter.Models;

/// <summary>Accumulates one Hessian per linear group from the inputs a module's forward pass shows it (§3.2).</summary>
/// <param name="groups">The groups to capture, or null for every group the forward shows (a sequential capture takes one sublayer's at a time).</param>
public sealed class HessianCapture(IDenseAlgebra algebra, IReadOnlySet<LinearGroup>? groups = null) : IHessianObserver, IDisposable
{
    private readonly Dictionary<LinearGroup, HessianAccumulator> _accumulators = new();

    public bool Observes(LinearGroup group) => groups?.Contains(group) ?? true;

    public void OnLinearInput(LinearGroup group, Matrix input)
    {
        if (Observes(group))
            AccumulatorFor(group).Add(input.Data, input.Rows);
    }

    public HessianAccumulator AccumulatorFor(LinearGroup group)
    {
        if (!_accumulators.TryGetValue(group, out var accumulator))
            _accumulators[group] = accumulator = new HessianAccumulator(group.InFeatures, algebra);
        return accumulator;
    }

    public HessianAccumulator For(LinearGroup group) =>
        _accumulators.TryGetValue(group, out var a) ? a : new HessianAccumulator(group.InFeatures);

    /// <summary>Frees the sums (on a GPU, k×k float64 each).</summary>
    public void Dispose()
    {
        foreach (var a in _accumulators.Values)
            a.Dispose();
        _accumulators.Clear();
    }
}
