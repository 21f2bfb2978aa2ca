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
    /// Settles where the calibration states live (<see cref="ConvertSettings.CalibrationStates"/>), logs the estimate
    /// for that placement, and throws <see cref="ResourceShortfallException"/> naming every shortfall unless
    /// <paramref name="enforce"/> is false; returns whether the states go on the GPU.
    /// </summary>
    public static bool Run(ResourceInputs inputs, ConvertSettings settings, long? gpuFreeBytes, TextWriter log, bool enforce)
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
        bool onGpu = StatesOnGpu(settings.CalibrationStates, inputs, gpuFreeBytes);
        var needs = ResourceEstimate.For(inputs with { StatesOnGpu = onGpu });
        var available = Measure(settings, gpuFreeBytes);
        log.WriteLine($"convert: estimate: {needs.Describe(available)}");
        var shortfalls = needs.Shortfalls(available);
        if (shortfalls.Count == 0)
            return onGpu;
        if (!enforce)
        {
            log.WriteLine($"convert: warning: the job may not fit ({string.Join("; ", shortfalls)}); running anyway (--skip-resource-check)");
            return onGpu;
        }
        throw new ResourceShortfallException($"this job does not fit: {string.Join("; ", shortfalls)} (--skip-resource-check runs it anyway)");
    }

    /// <summary>What a job may plan on: the free GPU memory, or the budget when it is smaller.</summary>
    public static long GpuBytesToPlanOn(long free, long? budget) => budget is { } b ? Math.Min(free, b) : free;

    /// <summary>
    /// Whether the states go on the GPU: as asked, or under auto when the estimate with them there stays within
    /// <see cref="GpuStatesShare"/> of the free GPU memory.
    /// </summary>
    public static bool StatesOnGpu(StatePlacement placement, ResourceInputs inputs, long? gpuFreeBytes) => placement switch
    {
        StatePlacement.Host => false,
        StatePlacement.Gpu when inputs.Gpu is null => throw new InvalidSettingsException("--calibration-states gpu needs a GPU (--device cuda:N)"),
        StatePlacement.Gpu => true,
        _ => inputs.Gpu is not null && gpuFreeBytes is { } free && ResourceEstimate.For(inputs with { StatesOnGpu = true }).GpuBytes <= GpuStatesShare * free,
    };

    /// <summary>
    /// The share of free GPU memory auto lets the estimate with the states on the GPU reach: the GPU figures are
    /// counted from the code's allocations but were never checked against a measured peak, so a job near the edge keeps
    /// its states on the host (slower) rather than running out of GPU memory hours in.
    /// </summary>
    public const double GpuStatesShare = 0.85;

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
        return new ResourceInputs(spec, settings.CalVolume.Rows, settings.CalVolume.Cols, bits, settings.HeadBits, element, linearsInFlight, otherFiles, existing, gpu);
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
