using System.Diagnostics;
using Converter.Cli.Commands.Eval;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Reporting;
using Converter.Eval.Evaluation;
using Converter.Eval.Loading;
using Converter.Eval.Reports;
using Converter.Formats.IO;

namespace Converter.Cli.Commands.Compare;

/// <summary>The `compare --json` object: the reference's perplexity and one <see cref="EvalJson"/> per variant.</summary>
public sealed record CompareJson(string Reference, double ReferencePpl, string Text, int Rows, int Length, int Topk, double Seconds, IReadOnlyList<EvalJson> Results);

/// <summary>Behaviour of `trellis compare`: all variants in lockstep with one reference run, one table.</summary>
public static class CompareRun
{
    public static int Execute(CompareOptions options, CliContext context)
    {
        var clock = Stopwatch.StartNew();
        using var backend = ComputeBackend.Open(options.Data.Device, context.Log, "compare", new Cuda.Models.GpuForwardOptions(options.Data.GpuMath));
        using var reference = EvalModel.Open(options.ReferenceDir, context.Codebooks, backend.Algebra, backend.Blocks);
        var tests = new List<EvalModel>();
        try
        {
            foreach (var dir in options.QuantDirs)
                tests.Add(EvalModel.Open(dir, context.Codebooks, backend.Algebra, backend.Blocks));
            foreach (var test in tests)
                MultiplierWarning.Report("compare", test.Directory, test.Config.Json, context.Log);
            var input = EvalInput.Load(reference, options.Data.Text, options.Data.Rows, options.Data.Length);
            context.Log.WriteLine($"compare: {tests.Count} variant(s) of {reference.Directory}, {input.Rows.Count} rows × {input.Length} tokens of {input.SourcePath}");
            var results = ProgressDisplay.Run(context, "compare", reference.Model.Modules.Count,
                steps => LockstepComparison.Run(reference, tests, input.Rows, options.TopK, input.Vocabulary, new StepReporter(steps)));
            double seconds = clock.Elapsed.TotalSeconds;

            if (options.ReportPath is { } path)
            {
                var report = new EvalReportInput($"trellis compare: {results.Count} variant(s) of {reference.Name}", reference.Directory, reference.Name,
                    input.SourcePath, input.Rows.Count, input.Length, options.TopK, results, seconds);
                AtomicFile.WriteAllText(path, EvalReport.Render(report));
                context.Log.WriteLine($"compare: wrote report {path}");
            }
            if (options.Json)
            {
                JsonOutput.Write(context.Output, new CompareJson(reference.Directory, results[0].Logits.PplB, input.SourcePath, input.Rows.Count, input.Length,
                    options.TopK, Math.Round(seconds, 2), results.Select(r => EvalJson.From(r, reference.Directory, input, options.TopK)).ToList()));
            }
            else
            {
                PrintTable(reference, results, input, options.TopK, seconds, context);
            }
            return ExitCodes.Ok;
        }
        finally
        {
            foreach (var t in tests)
                t.Dispose();
        }
    }

    private static void PrintTable(EvalModel reference, IReadOnlyList<ComparisonResult> results, EvalInput input, int topK, double seconds, CliContext context)
    {
        var console = ResultConsole.Create(context);
        var table = ResultConsole.PlainTable($"Against {reference.Name}: {input.Rows.Count} rows × {input.Length} tokens of {Path.GetFileName(input.SourcePath)}",
            "model", "bpw", "bpw+scales", "head", "codebook", "multiplier", "exllamav3", "calibration", "KL(A,B)", "KL(B,A)", "top-1 agr", $"top-{topK} agr", "PPL");
        table.AddTextRow(reference.Name + " (reference)", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", EvalRun.F(results[0].Logits.PplB, "0.000"));
        foreach (var r in results)
        {
            var q = r.Quantization;
            var l = r.Logits;
            table.AddTextRow(r.Model, q?.ConfigBits is { } b ? EvalRun.F(b, "0.00") : "-", q is null ? "-" : EvalRun.F(q.BitsWithScales, "0.000"),
                q is null ? "-" : q.HeadBits.ToString(System.Globalization.CultureInfo.InvariantCulture), q?.Codebook ?? "-", q?.Multiplier ?? "-",
                q is null ? "-" : q.Exllamav3CanDecode ? "runs" : "cannot decode", q?.Calibration ?? "-",
                EvalRun.F(l.KlAb, "0.00000"), EvalRun.F(l.KlBa, "0.00000"), EvalRun.F(l.TopkAgreement[0], "0.0000"), EvalRun.F(l.TopkAgreement[topK - 1], "0.0000"),
                EvalRun.F(l.PplA, "0.000"));
        }
        console.Write(table);
        context.Output.WriteLine($"compare: {EvalRun.F(seconds, "0.0")} s");
    }
}
