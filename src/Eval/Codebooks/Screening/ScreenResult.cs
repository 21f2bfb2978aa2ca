namespace Converter.Eval.Codebooks.Screening;

/// <summary>
/// One candidate at one K; field names are the JSON keys of the screen's journal and of `--json`. MSEs are per
/// weight of unit-variance data; the difference is the candidate's per-tile MSE minus the reference's on the same
/// tile, averaged, with its 95% interval; <c>Significant</c> when that interval excludes zero.
/// </summary>
public sealed record ScreenBitsResult(
    int Bits,
    double Mse,
    double MseLow,
    double MseHigh,
    double RdBound,
    double ReferenceMse,
    double Difference,
    double DifferenceLow,
    double DifferenceHigh,
    bool Significant)
{
    /// <summary>The paired difference relative to the reference's MSE (−0.01 = 1% less distortion).</summary>
    public double RelativeDifference => Difference / ReferenceMse;
}

/// <summary>One candidate multiplier: its codebook's statistics over all 65536 states and its result at each K.</summary>
public sealed record ScreenResult(
    string Multiplier,
    double Rms,
    double Mean,
    IReadOnlyList<ScreenBitsResult> PerBits,
    string Device,
    double Seconds)
{
    public ScreenBitsResult At(int bits) => PerBits.FirstOrDefault(r => r.Bits == bits)
        ?? throw new ArgumentException($"the screen of {Multiplier} has no result at K={bits}", nameof(bits));
}
