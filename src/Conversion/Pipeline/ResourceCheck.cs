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
    /// <summary>Logs the estimate; throws <see cref="ResourceShortfallException"/> naming every shortfall unless <paramref name="enforce"/> is false.</summary>
    public static void Run(ResourceInputs inputs, ConvertSettings settings, long? gpuFreeBytes, TextWriter log, bool enforce)
    {
        var needs = ResourceEstimate.For(inputs);
        var available = Measure(settings, gpuFreeBytes);
        log.WriteLine($"convert: estimate: {needs.Describe(available)}");
        var shortfalls = needs.Shortfalls(available);
        if (shortfalls.Count == 0)
            return;
        if (!enforce)
        {
            log.WriteLine($"convert: warning: the job may not fit ({string.Join("; ", shortfalls)}); running anyway (--skip-resource-check)");
            return;
        }
        throw new ResourceShortfallException($"this job does not fit: {string.Join("; ", shortfalls)} (--skip-resource-check runs it anyway)");
    }

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
