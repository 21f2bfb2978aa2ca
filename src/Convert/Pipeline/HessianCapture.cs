using Converter.Compute;
using Converter.Models;
using Converter.Regularize.Hessian;

namespace Converter.Cli.Pipeline;

/// <summary>Accumulates one Hessian per linear group from the inputs a module's forward pass shows it (§3.2).</summary>
public sealed class HessianCapture : ILinearInputObserver
{
    private readonly Dictionary<LinearGroup, HessianAccumulator> _accumulators = new();

    public void OnLinearInput(LinearGroup group, Matrix input)
    {
        if (!_accumulators.TryGetValue(group, out var accumulator))
            _accumulators[group] = accumulator = new HessianAccumulator(group.InFeatures);
        accumulator.Add(input.Data, input.Rows);
    }

    public HessianAccumulator For(LinearGroup group) =>
        _accumulators.TryGetValue(group, out var a) ? a : new HessianAccumulator(group.InFeatures);
}
