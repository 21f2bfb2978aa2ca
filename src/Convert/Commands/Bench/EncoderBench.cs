using System.Diagnostics;
using System.Runtime.InteropServices;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Reporting;
using Converter.Cuda.Trellis;
using Converter.Formats.IO;
using Converter.Trellis.Distortion;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;

namespace Converter.Cli.Commands.Bench;

/// <summary>One K of `trellis bench encoder`.</summary>
public sealed record EncoderBenchRow(int Bits, int CpuThreads, int CpuTiles, double CpuTilesPerSecond, double CpuMse, string? Gpu, int GpuTiles,
    double? GpuTilesPerSecond, double? GpuMse, double? GpuMseRatio, bool? GpuStatesValid, double? GpuLimitTilesPerSecond, int? GpuRegisters, int? GpuSpillBytes,
    double? Exllamav3TilesPerSecond);

/// <summary>
/// Runs the encoder benchmark: N(0,1) tiles scaled to the codebook's RMS (so the search compares against the
/// codebook's exact fp16 values, as in a conversion), MSE reported per unit variance.
/// </summary>
public static class EncoderBench
{
    // exllamav3's own CUDA encoder on the H100 of this workplace, same workload (issue "GPU: a CUDA backend…").
    private static readonly Dictionary<int, double> Exllamav3H100 = new() { [1] = 25_000, [2] = 70_000, [4] = 78_000, [6] = 89_000 };

    public static int Execute(EncoderBenchOptions options, CliContext context)
    {
        var table = context.Codebooks.Get(options.Codebook);
        using var backend = ComputeBackend.Open(options.Device);
        string machine = $"{CpuName()} ({Environment.ProcessorCount} threads), {backend.Description}, {RuntimeInformation.OSDescription}";
        context.Log.WriteLine($"bench encoder: {options.Codebook}, {machine}, {DateTime.UtcNow:yyyy-MM-dd}");

        var unit = GaussianTiles.Generate(options.GpuTiles, options.Seed);
        float rms = (float)table.Rms;
        var targets = Array.ConvertAll(unit, v => v * rms);
        var cpuTargets = targets.AsMemory(0, options.CpuTiles * TileLayout.Length);

        var rows = new List<EncoderBenchRow>();
        context.Output.WriteLine($"{"K",2} {"CPU tiles/s",12} {"GPU tiles/s",12} {"x CPU",7} {"limit",9} {"of limit",8} {"exl3 H100",10} {"CPU MSE",9} {"GPU MSE",9} {"ratio",7} {"valid",5} {"regs",4}");
        foreach (int k in options.Bits)
        {
            var cpu = new TrellisEncoder(table.Memory, k, options.Threads);
            var cpuStates = new ushort[cpuTargets.Length];
            var cpuDecoded = new float[cpuTargets.Length];
            var clock = Stopwatch.StartNew();
            cpu.Encode(cpuTargets, cpuStates, cpuDecoded);
            double cpuRate = options.CpuTiles / clock.Elapsed.TotalSeconds;
            double cpuMse = Mse(cpuTargets.Span, cpuDecoded) / (rms * rms);

            EncoderBenchRow row;
            if (backend.Cuda is { } cuda)
            {
                using var gpu = new CudaTileEncoder(cuda, table.Memory, k);
                var gpuStates = new ushort[cpuTargets.Length];
                var gpuDecoded = new float[cpuTargets.Length];
                gpu.Encode(cpuTargets, gpuStates, gpuDecoded);
                bool valid = AllTailBiting(gpuStates, k);
                double gpuMse = Mse(cpuTargets.Span, gpuDecoded) / (rms * rms);
                double seconds = gpu.MeasureSearchSeconds(targets, options.Repeats);
                var (regs, spill) = gpu.KernelResources;
                row = new EncoderBenchRow(k, cpu.MaxThreads, options.CpuTiles, cpuRate, cpuMse, backend.Description, options.GpuTiles,
                    options.GpuTiles / seconds, gpuMse, gpuMse / cpuMse, valid, CudaTileEncoder.ArithmeticLimit(cuda.Device), regs, spill,
                    Exllamav3H100.TryGetValue(k, out var e) ? e : null);
            }
            else
            {
                row = new EncoderBenchRow(k, cpu.MaxThreads, options.CpuTiles, cpuRate, cpuMse, null, 0, null, null, null, null, null, null, null,
                    Exllamav3H100.TryGetValue(k, out var e) ? e : null);
            }
            rows.Add(row);
            context.Output.WriteLine($"{k,2} {row.CpuTilesPerSecond,12:F0} {Num(row.GpuTilesPerSecond, "F0"),12} {Num(row.GpuTilesPerSecond / row.CpuTilesPerSecond, "F0"),7} " +
                $"{Num(row.GpuLimitTilesPerSecond, "F0"),9} {Num(row.GpuTilesPerSecond / row.GpuLimitTilesPerSecond * 100, "F1"),7}% {Num(row.Exllamav3TilesPerSecond, "F0"),10} " +
                $"{row.CpuMse,9:F5} {Num(row.GpuMse, "F5"),9} {Num(row.GpuMseRatio, "F4"),7} {(row.GpuStatesValid is { } v ? (v ? "yes" : "NO") : "-"),5} {Num(row.GpuRegisters, "D"),4}");
        }
        if (options.JsonPath is { } path)
        {
            AtomicFile.WriteAllText(path, System.Text.Json.JsonSerializer.Serialize(new
            {
                machine,
                date = DateTime.UtcNow,
                codebook = options.Codebook.ToString(),
                rows,
            }, JsonOutput.Options));
            context.Log.WriteLine($"bench encoder: wrote {path}");
        }
        return rows.All(r => r.GpuStatesValid != false) ? ExitCodes.Ok : ExitCodes.Failure;
    }

    private static string Num(double? v, string format) => v is { } x ? x.ToString(format, System.Globalization.CultureInfo.InvariantCulture) : "-";

    private static string Num(int? v, string format) => v is { } x ? x.ToString(format, System.Globalization.CultureInfo.InvariantCulture) : "-";

    private static double Mse(ReadOnlySpan<float> targets, ReadOnlySpan<float> decoded)
    {
        double sum = 0;
        for (int i = 0; i < targets.Length; i++)
        {
            double e = decoded[i] - targets[i];
            sum += e * e;
        }
        return sum / targets.Length;
    }

    private static bool AllTailBiting(ushort[] states, int bits)
    {
        for (int t = 0; t < states.Length; t += TileLayout.Length)
        {
            if (!TrellisPacking.IsTailBiting(states.AsSpan(t, TileLayout.Length), bits))
                return false;
        }
        return true;
    }

    private static string CpuName() =>
        File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "cpu"
            : "cpu";
}
