using Converter.Eval.Codebooks.Confirmation;

namespace Converter.Conversion.Confirmation;

/// <summary>
/// A finished confirmation: every variant's measurement, the per-multiplier rows (<see cref="ConfirmationStatistics"/>),
/// the evaluation rows they were measured on, and how many conversions were reused from an earlier run.
/// </summary>
public sealed record ConfirmationResult(
    string Model,
    string Text,
    int Rows,
    int Length,
    double Bits,
    IReadOnlyList<ConfirmationMeasurement> Variants,
    IReadOnlyList<ConfirmationRow> Results,
    int Reused,
    double Seconds);
