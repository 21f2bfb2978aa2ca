using System.Globalization;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Reporting;
using Converter.Eval.Evaluation;
using Converter.Eval.Loading;

namespace Converter.Cli.Commands.Ppl;

/// <summary>The `ppl --json` result.</summary>
/// <param name="Vocabulary">Logits the softmax runs over (the tokenizer's vocabulary, capped at the model's vocab_size).</param>
/// <param name="Text">The text file the rows were tokenized from; null with --ids.</param>
/// <param name="Ids">The token ids file the rows were read from; null for a text run.</param>
/// <param name="LogitsOut">The safetensors file the logits were written to, or null.</param>
public sealed record PplJson(string Model, double Ppl, int Rows, int Length, long Tokens, long Scored, int Vocabulary, string? Text, string? Ids,
    string? LogitsOut, bool Quantized, double Seconds);

/// <summary>Behaviour of `trellis ppl`: tokenize (or read the ids), stream the model over the rows, print the perplexity.</summary>
public static class PplRun
{
    public static int Execute(PplOptions options, CliContext context)
    {
        // The cheap checks first, so a malformed ids file or an impossible output path fails before any model work.
        var ids = options.IdsPath is { } idsPath ? TokenIdsFile.Read(idsPath) : null;
        if (options.LogitsOut is { } logitsOut)
            RequireDirectoryOf(logitsOut);
        using var backend = ComputeBackend.Open(options.Device, context.Log, "ppl", new Cuda.Models.GpuForwardOptions(options.GpuMath));
        using var model = EvalModel.Open(options.ModelDir, context.Codebooks, backend.Algebra, backend.Blocks);
        MultiplierWarning.Report("ppl", model.Directory, model.Config.Json, context.Log);
        var input = ids is not null
            ? EvalInput.FromIds(model, ids)
            : EvalInput.Load(model, options.Text!.Text, options.Text.Rows, options.Text.Length);
        context.Log.WriteLine($"ppl: {model.Directory}{(model.IsQuantized ? " (quantized)" : "")}, {input.Rows.Count} rows × {input.Length} tokens of " +
            $"{input.SourcePath}{(ids is not null ? " (exact ids, no BOS added)" : "")}");
        var result = ProgressDisplay.Run(context, "ppl", model.Model.Modules.Count,
            steps => PerplexityEvaluation.Run(model, input.Rows, input.Vocabulary, new StepReporter(steps), WriteLogits(options.LogitsOut, ids?.Flat == true, steps)));
        if (options.Json)
        {
            JsonOutput.Write(context.Output, new PplJson(model.Directory, result.Ppl, result.Rows, input.Length, result.Tokens, result.Scored, input.Vocabulary,
                options.Text?.Text.Name, options.IdsPath, options.LogitsOut, model.IsQuantized, Math.Round(result.Seconds, 2)));
        }
        else
        {
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Perplexity {result.Ppl:F4} over {result.Scored} predicted tokens ({result.Rows} rows × {input.Length}) of {input.SourcePath}, {result.Seconds:F1} s"));
        }
        return ExitCodes.Ok;
    }

    private static Action<ModelStream>? WriteLogits(string? path, bool dropRowAxis, IStepProgress steps) => path is null ? null : stream =>
    {
        var shape = LogitsFile.Write(path, stream, dropRowAxis);
        steps.Log($"ppl: wrote {LogitsFile.TensorName} float32 ({string.Join(", ", shape)}) to {path}");
    };

    private static void RequireDirectoryOf(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"{path}: the directory {directory} does not exist (--logits-out)");
    }
}
