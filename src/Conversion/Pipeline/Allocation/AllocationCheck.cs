using System.Text.Json.Nodes;
using Converter.Conversion.Reporting;
using Converter.Conversion.Samples;
using Converter.Eval.Evaluation;
using Converter.Eval.Loading;

namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>How the shipped allocation was chosen: the KL each candidate allocation gave on held-out rows.</summary>
/// <param name="Shipped">"measured", or "uniform" when the measured allocation did worse.</param>
/// <param name="Granularity">The measurement's units (<see cref="MeasureGranularity"/>): what shares one K.</param>
/// <param name="MeasuredKl">Held-out KL of the measured allocation (null when it equals the uniform one: nothing to check).</param>
/// <param name="UniformKl">Held-out KL of the uniform allocation.</param>
public sealed record AllocationOutcome(string Shipped, string Measurement, MeasureGranularity Granularity, double PredictedKl, double UniformPredictedKl, double? MeasuredKl, double? UniformKl,
    string? HeldOutText, int HeldOutRows, int HeldOutLength)
{
    /// <summary>The quantization_config entry that records the choice.</summary>
    public JsonObject ToJson() => new()
    {
        ["method"] = Shipped,
        ["measurement"] = Measurement,
        ["granularity"] = Granularity.Name(),
        ["predicted_kl"] = PredictedKl,
        ["uniform_predicted_kl"] = UniformPredictedKl,
        ["held_out_kl_measured"] = MeasuredKl,
        ["held_out_kl_uniform"] = UniformKl,
        ["held_out"] = HeldOutText is null ? null : new JsonObject { ["text"] = HeldOutText, ["rows"] = HeldOutRows, ["length"] = HeldOutLength },
    };
}

/// <summary>
/// The guard of `convert --measurement`: a measured allocation is a prediction from groups measured one at a time
/// (exllamav3's users report its optimizer ending worse than the uniform baseline, its issue #108), so the uniform
/// allocation is converted too, both are evaluated against the original on held-out rows (the built-in evaluation
/// text, as `trellis eval`), and the better one is shipped. The choice is recorded in quantization_config.allocation.
/// </summary>
public static class AllocationCheck
{
    /// <summary>Rows of the held-out comparison: `trellis eval`'s defaults.</summary>
    public const int Rows = 16, Length = 256;

    public const string ConfigKey = "allocation";

    /// <returns>The choice, and the summary of the uniform conversion when it is the one shipped (null otherwise).</returns>
    public static (AllocationOutcome Outcome, ConversionSummary? UniformShipped) Run(ConvertSettings settings, AllocationPlan plan, ConversionSession session)
    {
        string name = Path.GetFileName(settings.MeasurementPath!);
        if (plan.SameAsUniform)
        {
            session.Log.WriteLine("convert: the measured allocation equals the uniform one; nothing to check");
            var same = new AllocationOutcome("measured", name, plan.Granularity, plan.PredictedKl, plan.UniformPredictedKl, null, null, null, 0, 0);
            Record(settings.OutDir, same);
            return (same, null);
        }
        var uniformDir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(settings.OutDir)) + ".uniform-check";
        var uniform = settings with
        {
            MeasurementPath = null,
            OutDir = uniformDir,
            WorkDir = uniformDir + ".work",
            Overwrite = true,
            Resume = false,
        };
        session.Log.WriteLine($"convert: converting the uniform allocation too, to check the measured one against it on held-out rows ({uniformDir})");
        var uniformSummary = new ConversionPipeline(uniform, session).Run();

        var text = BuiltInSamples.EvaluationText;
        double measuredKl, uniformKl;
        using (var backend = ComputeBackend.Open(settings.Device, session.Log, "convert"))
        using (var reference = EvalModel.Open(settings.ModelDir, session.Codebooks, backend.Algebra, backend.Blocks))
        using (var measured = EvalModel.Open(settings.OutDir, session.Codebooks, backend.Algebra, backend.Blocks))
        using (var uniformModel = EvalModel.Open(uniformDir, session.Codebooks, backend.Algebra, backend.Blocks))
        {
            var input = EvalInput.Load(reference, text, Rows, Length);
            var results = session.Progress.Run("check", reference.Model.Modules.Count,
                steps => LockstepComparison.Run(reference, [measured, uniformModel], input.Rows, 1, input.Vocabulary, new StepReporter(steps)));
            (measuredKl, uniformKl) = (results[0].Logits.KlAb, results[1].Logits.KlAb);
        }
        bool keepMeasured = measuredKl <= uniformKl;
        session.Log.WriteLine($"convert: held-out KL {measuredKl:E4} measured vs {uniformKl:E4} uniform (predicted {plan.PredictedKl:E4} vs {plan.UniformPredictedKl:E4}): " +
            (keepMeasured ? "shipping the measured allocation" : "the measured allocation did worse; shipping the uniform one"));
        if (!keepMeasured)
            Swap(settings.OutDir, uniformDir);
        Directory.Delete(uniformDir, recursive: true);
        var outcome = new AllocationOutcome(keepMeasured ? "measured" : "uniform", name, plan.Granularity, plan.PredictedKl, plan.UniformPredictedKl, measuredKl, uniformKl,
            text.Name, Rows, Length);
        Record(settings.OutDir, outcome);
        return (outcome, keepMeasured ? null : uniformSummary with { OutDir = settings.OutDir });
    }

    /// <summary>--no-allocation-check: the measured allocation is shipped as converted, recorded with its prediction only.</summary>
    public static AllocationOutcome Unchecked(ConvertSettings settings, AllocationPlan plan)
    {
        var outcome = new AllocationOutcome(plan.SameAsUniform ? "measured" : "measured (unchecked)", Path.GetFileName(settings.MeasurementPath!),
            plan.Granularity, plan.PredictedKl, plan.UniformPredictedKl, null, null, null, 0, 0);
        Record(settings.OutDir, outcome);
        return outcome;
    }

    /// <summary>Puts the uniform conversion where the measured one was; the measured one ends in <paramref name="uniformDir"/> and is deleted with it.</summary>
    private static void Swap(string outDir, string uniformDir)
    {
        var target = Path.GetFullPath(outDir);
        var aside = target + ".measured-" + Guid.NewGuid().ToString("N")[..8];
        Directory.Move(target, aside);
        Directory.Move(uniformDir, target);
        Directory.Move(aside, uniformDir);
    }

    /// <summary>Adds quantization_config.allocation to the shipped model (config.json and quantization_config.json).</summary>
    private static void Record(string outDir, AllocationOutcome outcome) => OutputCompiler.AddQuantizationKey(outDir, ConfigKey, outcome.ToJson());
}
