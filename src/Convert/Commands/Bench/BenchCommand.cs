using System.CommandLine;
using System.Globalization;
using Converter.Conversion.Pipeline;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;

namespace Converter.Cli.Commands.Bench;

/// <summary>Settings of `trellis bench encoder`.</summary>
public sealed record EncoderBenchOptions(CodebookSpec Codebook, IReadOnlyList<int> Bits, string Device, int GpuTiles, int CpuTiles, int Repeats, int Seed,
    int Threads, string? JsonPath);

/// <summary>`trellis bench`: benchmarks of the hot paths (not tests; numbers go to docs/benchmarks.md).</summary>
public sealed class BenchCommand
{
    private readonly Option<string> _codebook = new("--codebook", "-c") { Description = "Codebook spec (NAME or NAME:MULTIPLIER)", DefaultValueFactory = _ => "mul1" };
    private readonly Option<string> _bits = new("--bits", "-b") { Description = "Comma-separated K values, 1..8", DefaultValueFactory = _ => "1,2,3,4,5,6,7,8" };
    private readonly Option<string> _device = new("--device") { Description = "auto, cpu or cuda:N (the CPU encoder is always measured for comparison)", DefaultValueFactory = _ => "auto" };
    private readonly Option<int> _gpuTiles = new("--tiles") { Description = "Tiles of N(0,1) data per GPU launch (exllamav3 was timed on 16k-64k)", DefaultValueFactory = _ => 32768 };
    private readonly Option<int> _cpuTiles = new("--cpu-tiles") { Description = "Tiles for the CPU encoder; the GPU encodes the same tiles for the MSE comparison", DefaultValueFactory = _ => 256 };
    private readonly Option<int> _repeats = new("--repeats") { Description = "Timed GPU launches per K (the median is reported)", DefaultValueFactory = _ => 5 };
    private readonly Option<int> _seed = new("--seed") { Description = "Seed of the Gaussian tiles", DefaultValueFactory = _ => 0 };
    private readonly Option<int> _threads = new("--threads") { Description = "CPU encoder threads (0 = all processors)", DefaultValueFactory = _ => 0 };
    private readonly Option<string?> _json = new("--json") { Description = "Also write the results as JSON to this file" };

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var encoder = new Command("encoder",
            "Viterbi encoder throughput per K: tiles/s of the CPU encoder on all threads and of the GPU kernel (search only, data on the device), " +
            "the MSE of both on the same tiles, and the GPU's distance from its arithmetic limit. Prints a table; --json FILE writes it.");
        foreach (var o in new Option[] { _codebook, _bits, _device, _gpuTiles, _cpuTiles, _repeats, _seed, _threads, _json })
            encoder.Options.Add(o);
        encoder.SetAction(parse => run(context => EncoderBench.Execute(Bind(parse), context)));
        var bench = new Command("bench", "Benchmarks of the converter's hot paths (see docs/benchmarks.md)");
        bench.Subcommands.Add(encoder);
        return bench;
    }

    private EncoderBenchOptions Bind(ParseResult parse)
    {
        CodebookSpec spec;
        try
        {
            spec = CodebookSpec.Parse(parse.GetValue(_codebook)!);
        }
        catch (FormatException e)
        {
            throw new UsageException($"--codebook: {e.Message}");
        }
        var bits = new List<int>();
        foreach (var part in parse.GetValue(_bits)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int k) || k < TileLayout.MinBits || k > TileLayout.MaxBits)
                throw new UsageException($"--bits: '{part}' is not an integer in 1..8");
            bits.Add(k);
        }
        var device = parse.GetValue(_device)!;
        ComputeBackend.CheckOption(device);
        int gpuTiles = parse.GetValue(_gpuTiles), cpuTiles = parse.GetValue(_cpuTiles), repeats = parse.GetValue(_repeats);
        if (gpuTiles < 1 || cpuTiles < 1 || repeats < 1)
            throw new UsageException("--tiles, --cpu-tiles and --repeats must be at least 1");
        return new EncoderBenchOptions(spec, bits, device, Math.Max(gpuTiles, cpuTiles), cpuTiles, repeats, parse.GetValue(_seed),
            Math.Max(0, parse.GetValue(_threads)), parse.GetValue(_json));
    }
}
