using Converter.Compute;
using Converter.Models;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// Puts back the weights some linears had before they were swapped for others (originals, reconstructions, refits),
/// once, when disposed.
/// </summary>
public sealed class WeightRestore(Dictionary<Linear, Matrix> weights) : IDisposable
{
    public void Dispose()
    {
        foreach (var (linear, weight) in weights)
            linear.ReplaceWeight(weight);
        weights.Clear();
    }
}
