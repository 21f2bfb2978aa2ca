using System.Diagnostics;
using System.Globalization;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Reporting;
using Converter.Eval.Evaluation;
using Converter.Eval.Loading;
using Converter.Eval.Reports;
using Converter.Formats.IO;

namespace Converter.Cli.Commands.Eval;

/// <summary>Behaviour of `trellis eval`: tokenize once, run both models in lockstep, print tables or JSON, write the report.</summary>
public static class EvalRun
{
    public static int Execute(EvalOptions options, CliContext context)
    {
        var clock = Stopwatch.StartNew();
        using var backend = ComputeBackend.Open(options.Data.Device, context.Log, "eval", new Cuda.Models.GpuForwardOptions(options.Data.GpuMath));
        using var reference = EvalModel.Open(options.ReferenceDir, context.Codebooks, backend.Algebra, backend.Blocks);
        using var test = EvalModel.Open(options.QuantDir, context.Codebooks, backend.Algebra, backend.Blocks);
        MultiplierWarning.Report("eval", test.Directory, test.Config.Json, context.Log);
        // The reference's tokenizer (a converted model carries a copy), so eval and compare tokenize identically.
        var input = EvalInput.Load(reference, options.Data.Text, options.Data.Rows, options.Data.Length);
        context.Log.WriteLine($"eval: A = {test.Directory}{(test.IsQuantized ? " (quantized)" : "")}, B = {reference.Directory}, " +
            $"{input.Rows.Count} rows × {input.Length} tokens of {input.SourcePath}");
        var result = ProgressDisplay.Run(context, "eval", reference.Model.Modules.Count,
            steps => LockstepComparison.Run(reference, [test], input.Rows, options.TopK, input.Vocabulary, new StepReporter(steps)))[0];
        double seconds = clock.Elapsed.TotalSeconds;

        if (options.ReportPath is { } path)
        {
            var report = new EvalReportInput($"trellis eval: {test.Name} vs {reference.Name}", reference.Directory, reference.Name, input.SourcePath,
                input.Rows.Count, input.Length, options.TopK, [result], seconds);
            AtomicFile.WriteAllText(path, EvalReport.Render(report));
            context.Log.WriteLine($"eval: wrote report {path}");
        }
        if (options.Json)
            JsonOutput.Write(context.Output, EvalJson.From(result, reference.Directory, input, options.TopK) with { Seconds = Math.Round(seconds, 2) });
        else
            PrintTables(result, input, options.TopK, seconds, context);
        return ExitCodes.Ok;
    }

    private static void PrintTables(ComparisonResult result, EvalInput input, int topK, double seconds, CliContext context)
    {
        var console = ResultConsole.Create(context);
        var modules = ResultConsole.PlainTable("Per-module error of A against B", "module", "rfn_err", "max_diff/norm", "sqnr (dB)", "cos_err");
        foreach (var m in result.Modules)
            modules.AddTextRow(m.Name, F(m.RfnErr, "0.000000"), F(m.MaxDiffNorm, "0.000000"), F(m.Sqnr, "0.00"), F(m.CosErr, "0.000000"));
        console.Write(modules);

        var l = result.Logits;
        var logits = ResultConsole.PlainTable($"Logits ({input.Rows.Count} rows × {input.Length} tokens, {l.Predicted} predicted)", "", "A (test)", "B (reference)");
        logits.AddTextRow("perplexity", F(l.PplA, "0.0000"), F(l.PplB, "0.0000"));
        for (int k = 0; k < topK; k++)
            logits.AddTextRow($"label in top-{k + 1}", F(l.LabelInTopkA[k], "0.0000"), F(l.LabelInTopkB[k], "0.0000"));
        console.Write(logits);

        var agreement = ResultConsole.PlainTable("A vs B (KL(A, B) = KL(softmax B ‖ softmax A), B the reference)", "", "value");
        for (int k = 0; k < topK; k++)
            agreement.AddTextRow($"top-{k + 1} agreement", F(l.TopkAgreement[k], "0.0000"));
        agreement.AddTextRow("KL(A, B) mean", F(l.KlAb, "0.00000000"));
        agreement.AddTextRow("KL(B, A) mean", F(l.KlBa, "0.00000000"));
        agreement.AddTextRow("KL(A, B) per-token median", F(l.KlAbMedian, "0.00000000"));
        agreement.AddTextRow("KL(A, B) per-token p90", F(l.KlAbP90, "0.00000000"));
        console.Write(agreement);

        var buckets = ResultConsole.PlainTable("KL(A, B) by B's top-1 probability", "B top-prob", "tokens", "share", "KL mean", "KL median");
        foreach (var b in l.KlBuckets)
        {
            buckets.AddTextRow($"[{b.Lo:0.00}, {b.Hi:0.00}{(b.Hi >= 1 ? "]" : ")")}", b.Tokens.ToString(CultureInfo.InvariantCulture), F(100 * b.Fraction, "0.0") + "%",
                b.KlMean is { } mean ? F(mean, "0.000000") : "-", b.KlMedian is { } median ? F(median, "0.000000") : "-");
        }
        console.Write(buckets);
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"eval: {seconds:F1} s"));
    }

    /// <summary>Invariant formatting; a value that rounds to zero prints unsigned (cos_err of equal outputs is about −1e-17).</summary>
    internal static string F(double v, string format)
    {
        var s = v.ToString(format, CultureInfo.InvariantCulture);
        return s.StartsWith('-') && s.AsSpan(1).Trim("0.").IsEmpty ? s[1..] : s;
    }
}
