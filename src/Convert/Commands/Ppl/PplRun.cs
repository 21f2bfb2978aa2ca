using System.Globalization;
using Converter.Eval.Evaluation;
using Converter.Eval.Loading;

namespace Converter.Cli.Commands.Ppl;

/// <summary>The `ppl --json` result.</summary>
public sealed record PplJson(string Model, double Ppl, int Rows, int Length, long Tokens, long Scored, string Text, bool Quantized, double Seconds);

/// <summary>Behaviour of `trellis ppl`: tokenize, stream the model over the rows, print the perplexity.</summary>
public static class PplRun
{
    public static int Execute(PplOptions options, CliContext context)
    {
        using var backend = Pipeline.ComputeBackend.Open(options.Data.Device, context.Log, "ppl");
        using var model = EvalModel.Open(options.ModelDir, context.Codebooks, backend.Algebra, backend.Blocks);
        var input = EvalInput.Load(model, options.Data.TextPath, options.Data.Rows, options.Data.Length);
        context.Log.WriteLine($"ppl: {model.Directory}{(model.IsQuantized ? " (quantized)" : "")}, {input.Rows.Count} rows × {input.Length} tokens of {input.TextPath}");
        var result = ProgressDisplay.Run(context, "ppl", model.Model.Modules.Count,
            steps => PerplexityEvaluation.Run(model, input.Rows, input.Vocabulary, new StepReporter(steps)));
        if (options.Json)
        {
            JsonOutput.Write(context.Output, new PplJson(model.Directory, result.Ppl, result.Rows, input.Length, result.Tokens, result.Scored,
                input.TextPath, model.IsQuantized, Math.Round(result.Seconds, 2)));
        }
        else
        {
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Perplexity {result.Ppl:F4} over {result.Scored} predicted tokens ({result.Rows} rows × {input.Length}) of {input.TextPath}, {result.Seconds:F1} s"));
        }
        return ExitCodes.Ok;
    }
}
