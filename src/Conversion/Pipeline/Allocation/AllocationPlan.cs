namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>A measured allocation and what the measurement predicts for it and for the uniform allocation at the same budget.</summary>
/// <param name="SameAsUniform">Every tensor gets the K the uniform allocation (<see cref="BitAllocation.Allocate"/>) gives it.</param>
public sealed record AllocationPlan(IReadOnlyDictionary<string, int> Bits, bool SameAsUniform, double PredictedKl, double UniformPredictedKl)
{
    /// <param name="source">The measurement file, for errors.</param>
    public static AllocationPlan Measured(IReadOnlyList<AllocationTarget> targets, Measurement measurement, double bitsPerWeight, string source)
    {
        var bits = MeasuredAllocation.Allocate(targets, measurement, bitsPerWeight, source);
        var uniform = BitAllocation.Allocate(targets, bitsPerWeight);
        bool same = uniform.All(kv => bits[kv.Key] == kv.Value);
        return new AllocationPlan(bits, same, MeasuredAllocation.PredictedKl(targets, measurement, bits, source),
            MeasuredAllocation.PredictedKl(targets, measurement, uniform, source));
    }
}
