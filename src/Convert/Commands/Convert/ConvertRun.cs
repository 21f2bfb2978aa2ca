using Converter.Conversion.Pipeline;
using Converter.Conversion.Pipeline.Allocation;
using Converter.Conversion.Reporting;

namespace Converter.Cli.Commands.Convert;

/// <summary>Behaviour of `trellis convert`: run the pipeline, print the summary.</summary>
public static class ConvertRun
{
    public static int Execute(ConvertSettings settings, bool json, CliContext context)
    {
        context.Log.WriteLine($"convert: {settings.ModelDir} → {settings.OutDir} at {settings.Bits} bpw, head {settings.HeadBits} bits, " +
            $"{settings.Codebook}, calibration data {settings.CalData}" +
            (settings.CalRows is null && settings.CalCols is null ? "" : $" ({settings.CalRows?.ToString() ?? "scaled"} rows × {settings.CalCols?.ToString() ?? "scaled"} tokens)"));
        var pipeline = new ConversionPipeline(settings, context.Conversion);
        var summary = pipeline.Run();
        if (summary.Completed && pipeline.Plan is { } plan)
        {
            var (outcome, uniformShipped) = settings.CheckAllocation ? AllocationCheck.Run(settings, plan, context.Conversion) : (AllocationCheck.Unchecked(settings, plan), null);
            context.Log.WriteLine($"convert: allocation shipped: {outcome.Shipped}");
            // The summary describes what is on disk: the uniform conversion's when it replaced the measured one.
            if (uniformShipped is not null)
                summary = uniformShipped with { Seconds = summary.Seconds };
        }
        if (json)
        {
            JsonOutput.Write(context.Output, summary);
        }
        else if (summary.Completed)
        {
            context.Output.WriteLine($"Converted to {summary.OutDir}: {summary.Bits:0.00} bpw ({summary.BitsWithScales:0.000} with scales), head {summary.HeadBits} bits, " +
                $"{summary.Codebook} {summary.Multiplier}, {summary.Tensors} tensors{(summary.CopiedTensors > 0 ? $" (+{summary.CopiedTensors} copied unchanged)" : "")}, " +
                $"{HumanFormat.Bytes(summary.OutputBytes)}, " +
                $"{HumanFormat.Duration(TimeSpan.FromSeconds(summary.Seconds))}{(summary.Fallbacks > 0 ? $", {summary.Fallbacks} tensors without error feedback (see trellis-convert.json)" : "")}");
        }
        return ExitCodes.Ok;
    }
}
