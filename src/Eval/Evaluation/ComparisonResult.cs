using Converter.Eval.Loading;
using Converter.Eval.Metrics;

namespace Converter.Eval.Evaluation;

/// <summary>One module's error metrics (docs/exl3-format.md §6.1) of a test model against the reference.</summary>
public sealed record ModuleMetrics(string Name, double RfnErr, double MaxDiffNorm, double Sqnr, double CosErr)
{
    public static ModuleMetrics From(string name, ModuleDiff diff) => new(name, diff.RfnErr, diff.MaxDiffNorm, diff.Sqnr, diff.CosErr);
}

/// <summary>Everything measured for one test model: per-module errors (every module before the head), the logit figures.</summary>
public sealed record ComparisonResult(
    string Model,
    string Directory,
    QuantizationSummary? Quantization,
    IReadOnlyList<ModuleMetrics> Modules,
    LogitMetrics Logits,
    double Seconds);
