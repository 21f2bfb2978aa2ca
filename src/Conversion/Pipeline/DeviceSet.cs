using Converter.Cuda.Models;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Distortion;
using Converter.Trellis.Tiles;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// The devices of a conversion (<c>--device cuda:0,cuda:1</c>): the first runs the calibration forwards and captures
/// the Hessians; every one quantizes linears, each module's spread over them by <see cref="LinearPlacement"/> at the
/// speeds measured when they were opened. One device is the ordinary single-device run, unmeasured. <c>cpu</c> may
/// be listed more than once: the CPU's threads are split between the entries (no faster, the same output; it runs
/// the splitting on machines without GPUs).
/// </summary>
public sealed class DeviceSet : IDisposable
{
    // Tiles of the speed measurement: ~30 ms of an H200's search at K = 4 after a warm-up launch, ~0.2 s of a CPU core.
    private const int GpuMeasureTiles = 8192;
    private const int CpuMeasureTiles = 64;
    private const int MeasureBits = 4;
    private const int WarmUpTiles = 16;

    private DeviceSet(IReadOnlyList<ComputeBackend> backends, IReadOnlyList<int> threads, IReadOnlyList<double> speeds)
    {
        Backends = backends;
        CpuThreads = threads;
        Speeds = speeds;
    }

    /// <summary>The backends, in the order listed; the first is <see cref="Primary"/>.</summary>
    public IReadOnlyList<ComputeBackend> Backends { get; }

    /// <summary>Runs the forwards, the Hessian capture and the head's comparison.</summary>
    public ComputeBackend Primary => Backends[0];

    /// <summary>CPU encoder threads of each device (0 = all processors; a share of them when cpu is listed more than once).</summary>
    public IReadOnlyList<int> CpuThreads { get; }

    /// <summary>Measured search speed of each device in tiles/s at K = 4 (1 for a single device, which is not measured).</summary>
    public IReadOnlyList<double> Speeds { get; }

    public int Count => Backends.Count;

    /// <summary>The entries of a <c>--device</c> value: one device, or a comma-separated list of GPUs or of cpu.</summary>
    public static IReadOnlyList<string> Entries(string option)
    {
        var entries = option.Split(',', StringSplitOptions.TrimEntries);
        if (entries.Length == 1)
        {
            ComputeBackend.CheckOption(entries[0]);
            return entries;
        }
        foreach (var entry in entries)
        {
            if (entry is "auto" || entry.Length == 0)
                throw new InvalidSettingsException($"--device: a list names its devices (cuda:N or cpu), got '{option}'");
            ComputeBackend.CheckOption(entry);
        }
        if (entries.Any(e => e == "cpu") && entries.Any(e => e != "cpu"))
            throw new InvalidSettingsException($"--device: a list is all GPUs or all cpu, got '{option}'");
        if (entries.Where(e => e != "cpu").GroupBy(e => e).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new InvalidSettingsException($"--device: {twice.Key} is listed twice");
        return entries;
    }

    /// <summary>
    /// Opens every device of <paramref name="option"/> and logs them as "<paramref name="command"/>: device …"; with
    /// several, measures each one's search speed and logs it.
    /// </summary>
    public static DeviceSet Open(string option, int threads, TextWriter log, string command, GpuForwardOptions? forward = null)
    {
        var entries = Entries(option);
        if (entries.Count == 1)
            return new DeviceSet([ComputeBackend.Open(entries[0], log, command, forward)], [threads], [1.0]);
        var backends = new List<ComputeBackend>();
        try
        {
            foreach (var entry in entries)
                backends.Add(ComputeBackend.Open(entry, forward));
            int total = threads > 0 ? threads : Environment.ProcessorCount;
            int[] shares = entries.Select(e => e == "cpu" ? Math.Max(1, total / entries.Count) : threads).ToArray();
            var table = CodebookTable.Build(CodebookSpec.Default(CodebookKind.Mul1));
            var speeds = backends.Select((b, i) => MeasureSpeed(b, table, shares[i])).ToArray();
            // Opening a GPU makes its context current; the forwards on this thread belong to the first.
            backends[0].Cuda?.MakeCurrent();
            log.WriteLine($"{command}: devices " + string.Join(", ", backends.Select((b, i) =>
                $"{b.Description}{(b.Cuda is null ? $" ({shares[i]} threads)" : "")} {speeds[i]:F0} tiles/s")) +
                "; the first runs the forwards, every one quantizes linears");
            return new DeviceSet(backends, shares, speeds);
        }
        catch
        {
            foreach (var b in backends)
                b.Dispose();
            throw;
        }
    }

    /// <summary>Tiles/s of the device's search at K = 4 on Gaussian tiles (a warm-up first, so a GPU's kernel compile is not timed).</summary>
    private static double MeasureSpeed(ComputeBackend backend, CodebookTable table, int threads)
    {
        backend.Cuda?.MakeCurrent();
        var encoder = backend.CreateEncoder(table.Memory, MeasureBits, threads);
        var targets = GaussianTiles.Generate(backend.Cuda is null ? CpuMeasureTiles : GpuMeasureTiles, seed: 0);
        var states = new ushort[targets.Length];
        int warmUp = WarmUpTiles * TileLayout.Length;
        encoder.Encode(targets.AsMemory(0, warmUp), states.AsMemory(0, warmUp), Memory<float>.Empty);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        encoder.Encode(targets, states, Memory<float>.Empty);
        double seconds = clock.Elapsed.TotalSeconds;
        // Frees the GPU encoder's history now (its backend's disposal of it later does nothing).
        (encoder as IDisposable)?.Dispose();
        return targets.Length / TileLayout.Length / Math.Max(seconds, 1e-6);
    }

    public void Dispose()
    {
        foreach (var backend in Backends)
            backend.Dispose();
    }
}
