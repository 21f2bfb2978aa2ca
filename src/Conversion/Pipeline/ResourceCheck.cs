using Converter.Conversion.Reporting;
using Converter.Formats.IO;
using Converter.Formats.Safetensors;
using Converter.Models;

namespace Converter.Conversion.Pipeline;

/// <summary>A job the estimate says cannot fit this machine: refused before anything is written (exit 1).</summary>
public sealed class ResourceShortfallException(string message) : Exception(message);

/// <summary>
/// The edge of <see cref="ResourceEstimate"/>: what this machine has free (<see cref="MachineResources"/>, and the GPU's
/// free memory), the estimate logged beside it, and the refusal.
/// </summary>
public static class ResourceCheck
{
    /// <summary>
    /// Settles how the job fits the GPU (<see cref="GpuMemoryPlan"/>: where the calibration states live, whether it runs
    /// lean) and whether the default quantizer's drift target stays (<see cref="Choose"/>), logs the estimate for that
    /// plan, and throws <see cref="ResourceShortfallException"/> naming every shortfall unless <paramref name="enforce"/>
    /// is false.
    /// </summary>
    /// <param name="otherGpus">The free memory of the GPUs of a <c>--device</c> list after the first (none for one device).</param>
    /// <returns>The plan, and true when the job is to run with exllamav3's quantizer instead of the default's drift target.</returns>
    public static (GpuMemoryPlan Plan, bool DriftDropped) Run(ResourceInputs inputs, ConvertSettings settings, long? gpuFreeBytes, TextWriter log, bool enforce,
        IReadOnlyList<(string Device, long Bytes)>? otherGpus = null)
    {
        if (gpuFreeBytes is { } free && settings.GpuMemoryBudgetBytes is { } budget)
        {
            log.WriteLine($"convert: GPU memory budget {HumanFormat.Bytes(budget)} (--gpu-memory), {HumanFormat.Bytes(free)} free");
            gpuFreeBytes = GpuBytesToPlanOn(free, budget);
        }
        else if (gpuFreeBytes is null && settings.GpuMemoryBudgetBytes is not null)
        {
            log.WriteLine("convert: note: --gpu-memory has no effect without a GPU");
        }
        var available = Measure(settings, gpuFreeBytes) with
        {
            OtherGpus = otherGpus?.Select(o => (o.Device, GpuBytesToPlanOn(o.Bytes, settings.GpuMemoryBudgetBytes))).ToList(),
        };
        var (plan, needs, withDrift) = Choose(inputs, available, settings.CalibrationStates, leanAllowed: settings.LinearsInFlight == 0,
            mayDropDrift: !settings.QuantizerChosen);
        if (withDrift is not null)
        {
            log.WriteLine($"convert: warning: the default quantizer's drift target does not fit ({string.Join("; ", withDrift.Shortfalls(available))}); " +
                "converting with exllamav3's quantizer (as --fast: about 25% higher KL) instead. --drift-target 1 insists on it");
        }
        log.WriteLine($"convert: estimate: {needs.Describe(available)}");
        if (plan.Lean || plan.StashOnGpu)
            log.WriteLine($"convert: GPU memory plan: {plan.Describe()}");
        var shortfalls = needs.Shortfalls(available);
        if (shortfalls.Count == 0)
            return (plan, withDrift is not null);
        if (!enforce)
        {
            log.WriteLine($"convert: warning: the job may not fit ({string.Join("; ", shortfalls)}); running anyway (--skip-resource-check)");
            return (plan, false);
        }
        throw new ResourceShortfallException($"this job does not fit: {string.Join("; ", shortfalls)} (--skip-resource-check runs it anyway)");
    }

    /// <summary>
    /// The plan for <paramref name="inputs"/> (<see cref="Plan"/>) and its needs. When they do not fit and
    /// <paramref name="mayDropDrift"/> (the drift target is the default's, not asked for), the same job without the drift
    /// target and the sequential capture (exllamav3's quantizer) is tried: a 70B layer's drift target needs its float64
    /// cross sum and solve beside the Hessian (34 GiB of GPU memory, lean, against under 17 without it), past the 24-32
    /// GB most users convert on. Where that fits, it is returned with the needs that did not fit (else null).
    /// </summary>
    public static (GpuMemoryPlan Plan, ResourceNeeds Needs, ResourceNeeds? DriftNeeds) Choose(ResourceInputs inputs, AvailableResources available,
        StatePlacement placement, bool leanAllowed, bool mayDropDrift)
    {
        var plan = Plan(placement, inputs, available.GpuBytes, leanAllowed);
        var needs = ResourceEstimate.For(plan.Inputs(inputs));
        if (!mayDropDrift || !inputs.OriginalStream || needs.Shortfalls(available).Count == 0)
            return (plan, needs, null);
        var plain = inputs with { OriginalStream = false, OriginalOnGpu = false, Sequential = false };
        var plainPlan = Plan(placement, plain, available.GpuBytes, leanAllowed);
        var plainNeeds = ResourceEstimate.For(plainPlan.Inputs(plain));
        return plainNeeds.Shortfalls(available).Count == 0 ? (plainPlan, plainNeeds, needs) : (plan, needs, null);
    }

    /// <summary>What a job may plan on: the free GPU memory, or the budget when it is smaller.</summary>
    public static long GpuBytesToPlanOn(long free, long? budget) => budget is { } b ? Math.Min(free, b) : free;

    /// <summary>
    /// The first of <see cref="GpuMemoryPlan.Candidates"/> whose GPU estimate stays within <see cref="GpuPlanShare"/>
    /// of the free GPU memory, else the first of the smallest estimate (the shortfall is then reported): a 70B's lean
    /// plans in 20 GB all peak in the capture, so one linear in flight cost time (its gate and up one after the other)
    /// and no memory. Without a GPU, the host plan.
    /// </summary>
    public static GpuMemoryPlan Plan(StatePlacement placement, ResourceInputs inputs, long? gpuFreeBytes, bool leanAllowed = true)
    {
        if (inputs.Gpu is null)
        {
            return placement == StatePlacement.Gpu
                ? throw new InvalidSettingsException("--calibration-states gpu needs a GPU (--device cuda:N)")
                : GpuMemoryPlan.Host;
        }
        var candidates = GpuMemoryPlan.Candidates(placement, leanAllowed, inputs.OriginalStream, inputs.Sequential && inputs.StageStash).ToList();
        if (gpuFreeBytes is not { } free)
            return candidates.First(p => placement == StatePlacement.Gpu || !p.StatesOnGpu);
        var estimates = candidates.Select(p => ResourceEstimate.For(p.Inputs(inputs)).GpuBytes).ToList();
        int fits = estimates.FindIndex(bytes => bytes <= GpuPlanShare * free);
        return candidates[fits >= 0 ? fits : estimates.IndexOf(estimates.Min())];
    }

    /// <summary>
    /// The share of free GPU memory a plan's estimate may reach: the GPU figures are counted from the code's
    /// allocations, and allocations the estimate does not see (cuBLAS and cuSOLVER workspaces, fragmentation) take some
    /// of the rest, so a job near the edge takes a slower plan rather than running out of GPU memory hours in.
    /// </summary>
    public const double GpuPlanShare = 0.85;

    /// <summary>The estimate's inputs for a conversion of <paramref name="spec"/> read from <paramref name="source"/>.</summary>
    public static ResourceInputs Inputs(ConvertSettings settings, TransformerSpec spec, ITensorReader source, IReadOnlyDictionary<string, int> bits,
        Func<int, int> linearsInFlight, GpuShape? gpu)
    {
        var embedding = TensorNames.Weight(spec.Names.Embedding);
        int element = source.Contains(embedding) ? source.Info(embedding).DType.ElementSize() : 2;
        long otherFiles = Directory.EnumerateFiles(settings.ModelDir).Where(OutputCompiler.IsCopied).Sum(f => new FileInfo(f).Length);
        // A resumed job keeps what its work directory holds; a fresh one deletes it first. Either way it is not needed anew.
        long existing = Directory.Exists(settings.WorkDir)
            ? Directory.EnumerateFiles(settings.WorkDir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length)
            : 0;
        return new ResourceInputs(spec, settings.CalVolume.Rows, settings.CalVolume.Cols, bits, settings.HeadBits, element, linearsInFlight, otherFiles, existing, gpu,
            OriginalStream: settings.Tuning.DriftTarget != 0, Sequential: settings.Tuning.SequentialCapture, StageStash: settings.StageStash,
            WholeStages: Pipeline.InFlight.WholeStages(settings.LinearsInFlight, gpu is not null, settings.Tuning.SequentialCapture, oneInFlight: false));
    }

    private static AvailableResources Measure(ConvertSettings settings, long? gpuFreeBytes)
    {
        var work = Path.GetFullPath(settings.WorkDir);
        // The output is assembled beside its final place (ConversionPipeline.Publish), so its parent's disk is what counts.
        var output = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(settings.OutDir)))!;
        return new AvailableResources(MachineResources.AvailableMemoryBytes(), gpuFreeBytes, MachineResources.FreeDiskBytes(work), MachineResources.FreeDiskBytes(output),
            MachineResources.MountOf(work) == MachineResources.MountOf(output));
    }
}
