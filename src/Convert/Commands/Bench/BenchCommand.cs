using System.CommandLine;
using System.Globalization;
using Converter.Conversion.Pipeline;
using Converter.Cuda.Models;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;

namespace Converter.Cli.Commands.Bench;

/// <summary>Settings of `trellis bench encoder`.</summary>
public sealed record EncoderBenchOptions(CodebookSpec Codebook, IReadOnlyList<int> Bits, string Device, int GpuTiles, int CpuTiles, int Repeats, int Seed,
    int Threads, string? JsonPath);

/// <summary>Settings of `trellis bench forward`.</summary>
public sealed record ForwardBenchOptions(string Shape, int Rows, int Tokens, IReadOnlyList<GpuForwardOptions> Variants, bool Capture, string Device, int Seed,
    string? JsonPath);

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

    /// <summary>Every math with each attention path, the reference (FP32, batched products) first.</summary>
    public const string AllForwardVariants = "fp32:products,fp32:fused,tf32:products,tf32:fused";

    private readonly Option<string> _shape = new("--shape")
    {
        Description = "Decoder layer shape, random weights: " + string.Join(" or ", SyntheticDecoderLayer.Shapes.Keys),
        DefaultValueFactory = _ => "llama-3-8b",
    };
    private readonly Option<int> _rows = new("--rows") { Description = "Calibration rows (exllamav3 calibrates on 250)", DefaultValueFactory = _ => 250 };
    private readonly Option<int> _tokens = new("--tokens") { Description = "Tokens per row (exllamav3: 2048)", DefaultValueFactory = _ => 2048 };
    private readonly Option<string> _variants = new("--variants")
    {
        Description = "Comma-separated MATH:ATTENTION pairs, MATH fp32 or tf32, ATTENTION auto, products or fused",
        DefaultValueFactory = _ => AllForwardVariants,
    };
    private readonly Option<bool> _capture = new("--capture") { Description = "Also time the capture pass (the forward with every group's Hessian sums)" };
    private readonly Option<string> _forwardDevice = new("--device") { Description = "cuda:N or auto (the GPU forward needs a GPU)", DefaultValueFactory = _ => "auto" };
    private readonly Option<int> _forwardSeed = new("--seed") { Description = "Seed of the random weights and hidden states", DefaultValueFactory = _ => 0 };
    private readonly Option<string?> _forwardJson = new("--json") { Description = "Also write the results as JSON to this file" };

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var encoder = new Command("encoder",
            "Viterbi encoder throughput per K: tiles/s of the CPU encoder on all threads and of the GPU kernel (search only, data on the device), " +
            "the MSE of both on the same tiles, and the GPU's distance from its arithmetic limit. Prints a table; --json FILE writes it.");
        foreach (var o in new Option[] { _codebook, _bits, _device, _gpuTiles, _cpuTiles, _repeats, _seed, _threads, _json })
            encoder.Options.Add(o);
        encoder.SetAction(parse => run(context => EncoderBench.Execute(Bind(parse), context)));
        var forward = new Command("forward",
            "GPU forward of one decoder layer with random weights over rows × tokens, in the converter's calibration chunks, per math/attention variant: " +
            "seconds, tokens/s, optionally the capture pass, and each output's relative distance from FP32 with the batched attention products. Prints a table; --json FILE writes it.");
        foreach (var o in new Option[] { _shape, _rows, _tokens, _variants, _capture, _forwardDevice, _forwardSeed, _forwardJson })
            forward.Options.Add(o);
        forward.SetAction(parse => run(context => ForwardBench.Execute(BindForward(parse), context)));
        var bench = new Command("bench", "Benchmarks of the converter's hot paths (see docs/benchmarks.md)");
        bench.Subcommands.Add(encoder);
        bench.Subcommands.Add(forward);
        return bench;
    }

    public ForwardBenchOptions BindForward(ParseResult parse)
    {
        var shape = parse.GetValue(_shape)!;
        if (!SyntheticDecoderLayer.Shapes.ContainsKey(shape))
            throw new UsageException($"--shape must be {string.Join(" or ", SyntheticDecoderLayer.Shapes.Keys)}, got '{shape}'");
        int rows = parse.GetValue(_rows), tokens = parse.GetValue(_tokens);
        if (rows < 1 || tokens < 1)
            throw new UsageException("--rows and --tokens must be at least 1");
        var variants = new List<GpuForwardOptions>();
        foreach (var part in parse.GetValue(_variants)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var pieces = part.Split(':');
            if (pieces.Length != 2 || GpuForwardOptions.ParseMath(pieces[0]) is not { } math || GpuForwardOptions.ParseAttention(pieces[1]) is not { } attention)
                throw new UsageException($"--variants: '{part}' is not MATH:ATTENTION (fp32 or tf32 : auto, products or fused)");
            variants.Add(new GpuForwardOptions(math, attention));
        }
        if (variants.Count == 0)
            throw new UsageException("--variants names no variant");
        var device = parse.GetValue(_forwardDevice)!;
        ComputeBackend.CheckOption(device);
        return new ForwardBenchOptions(shape, rows, tokens, variants, parse.GetValue(_capture), device, parse.GetValue(_forwardSeed), parse.GetValue(_forwardJson));
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
