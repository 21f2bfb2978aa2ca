using Converter.Compute;
using Converter.Models;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// A module's original weights, kept while its linears are swapped for their reconstructions one sublayer at a time
/// (a sequential capture with the drift target): the original model's stream must still run the module as the
/// original model does, between the quantized stream's passes through its partly quantized version.
/// </summary>
public sealed class OriginalWeights(IEnumerable<Linear> linears)
{
    private readonly Dictionary<Linear, Matrix> _weights = linears.ToDictionary(l => l, l => l.Weight);

    /// <summary>Puts every original weight back until the result is disposed, which restores what was there (reconstructions included).</summary>
    public IDisposable SwappedIn()
    {
        var current = _weights.Keys.Where(l => !ReferenceEquals(l.Weight, _weights[l])).ToDictionary(l => l, l => l.Weight);
        foreach (var linear in current.Keys)
            linear.ReplaceWeight(_weights[linear]);
        return new WeightRestore(current);
    }
}
