using System.Diagnostics;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Reporting;
using Converter.Eval.Codebooks.Confirmation;
using Converter.Eval.Evaluation;
using Converter.Eval.Loading;

namespace Converter.Conversion.Confirmation;

/// <summary>
/// Issue 18's end-to-end check of a multiplier screen: converts the model once per variant through the same
/// <see cref="ConversionPipeline"/> `trellis convert` runs (reusing finished conversions and resuming interrupted
/// ones), then evaluates every variant against the original in one <see cref="LockstepComparison"/> (the reference
/// runs once) and summarizes KL and top-1 agreement per multiplier (<see cref="ConfirmationStatistics"/>).
/// </summary>
public sealed class MultiplierConfirmation(ConfirmationSettings settings, ConversionSession session)
{
    /// <summary>
    /// Checks the model and every variant's folder before anything is converted: a missing model or a folder that is
    /// not ours fails now, not after hours of conversions.
    /// </summary>
    public IReadOnlyList<(ConfirmationVariant Variant, ConvertSettings Settings, ConversionState State)> Prepare(IReadOnlyList<ConfirmationVariant> variants) =>
        variants.Select(v =>
        {
            var (settled, _) = ConversionPipeline.Settle(settings.For(v));
            return (v, settled, ConversionReuse.Check(settled));
        }).ToList();

    public ConfirmationResult Run(IReadOnlyList<ConfirmationVariant> variants)
    {
        var clock = Stopwatch.StartNew();
        var planned = Prepare(variants);
        int reused = planned.Count(p => p.State == ConversionState.Finished);
        int toConvert = planned.Count - reused;
        session.Log.WriteLine($"confirm: {planned.Count} conversion(s) of {settings.ModelDir} at {settings.Bits} bpw in {settings.OutDir}, " +
            $"{reused} finished already, {toConvert} to run");
        var converting = Stopwatch.StartNew();
        int done = 0;
        foreach (var (variant, convertSettings, state) in planned)
        {
            string label = $"{variant.Codebook} seed {variant.Seed}";
            if (state == ConversionState.Finished)
            {
                session.Log.WriteLine($"confirm: reusing {convertSettings.OutDir} ({label})");
                continue;
            }
            // The overall ETA: each conversion of one model at one bits costs about the same whatever its multiplier.
            string eta = done > 0 ? $", eta {HumanFormat.Duration(converting.Elapsed / done * (toConvert - done))}" : "";
            session.Log.WriteLine($"confirm: conversion {done + 1}/{toConvert}: {label}{(state == ConversionState.Interrupted ? ", resuming" : "")} " +
                $"(elapsed {HumanFormat.Duration(converting.Elapsed)}{eta})");
            var summary = new ConversionPipeline(settings.For(variant) with { Resume = state == ConversionState.Interrupted }, session).Run();
            if (!summary.Completed)
                throw new InvalidOperationException($"{convertSettings.OutDir}: the conversion stopped before its end");
            done++;
        }

        using var backend = ComputeBackend.Open(settings.Device, session.Log, "confirm");
        using var reference = EvalModel.Open(settings.ModelDir, session.Codebooks, backend.Algebra, backend.Blocks);
        var tests = new List<EvalModel>();
        try
        {
            foreach (var p in planned)
                tests.Add(EvalModel.Open(p.Settings.OutDir, session.Codebooks, backend.Algebra, backend.Blocks));
            var input = EvalInput.Load(reference, settings.EvalText, settings.EvalRows, settings.EvalLength);
            session.Log.WriteLine($"confirm: comparing {tests.Count} variant(s) with {reference.Directory}, {input.Rows.Count} rows × {input.Length} tokens of {input.SourcePath}");
            var results = session.Progress.Run("compare", reference.Model.Modules.Count,
                steps => LockstepComparison.Run(reference, tests, input.Rows, 1, input.Vocabulary, new StepReporter(steps)));
            var measurements = planned.Zip(results, (p, r) => new ConfirmationMeasurement(p.Variant, p.Settings.OutDir, r.Logits.KlAb, r.Logits.TopkAgreement[0],
                r.Quantization?.Exllamav3CanDecode ?? true)).ToList();
            return new ConfirmationResult(reference.Directory, input.SourcePath, input.Rows.Count, input.Length, settings.Bits, measurements,
                ConfirmationStatistics.Summarize(measurements), reused, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            foreach (var t in tests)
                t.Dispose();
        }
    }
}
