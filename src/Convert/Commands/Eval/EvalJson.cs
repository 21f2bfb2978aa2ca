using Converter.Eval.Evaluation;
using Converter.Eval.Loading;
using Converter.Eval.Metrics;

namespace Converter.Cli.Commands.Eval;

/// <summary>
/// The `eval --json` object, and one entry of `compare --json`'s results: the docs/exl3-format.md §6.1 figures of model A
/// (the test) against B (the reference) on the stated rows.
/// </summary>
public sealed record EvalJson(
    string Model,
    string Reference,
    string Text,
    int Rows,
    int Length,
    int Topk,
    double PplA,
    double PplB,
    double KlAb,
    double KlBa,
    double KlAbMedian,
    double KlAbP90,
    IReadOnlyList<double> LabelInTopkA,
    IReadOnlyList<double> LabelInTopkB,
    IReadOnlyList<double> TopkAgreement,
    IReadOnlyList<KlBucket> KlBuckets,
    IReadOnlyList<ModuleMetrics> Modules,
    QuantizationSummary? Quantization,
    long Tokens,
    long Predicted,
    double Seconds)
{
    public static EvalJson From(ComparisonResult r, string reference, EvalInput input, int topK)
    {
        var l = r.Logits;
        return new EvalJson(r.Directory, reference, input.SourcePath, input.Rows.Count, input.Length, topK, l.PplA, l.PplB, l.KlAb, l.KlBa,
            l.KlAbMedian, l.KlAbP90, l.LabelInTopkA, l.LabelInTopkB, l.TopkAgreement, l.KlBuckets, r.Modules, r.Quantization, l.Tokens,
            l.Predicted, Math.Round(r.Seconds, 2));
    }
}
