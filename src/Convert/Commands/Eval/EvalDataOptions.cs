using System.CommandLine;
using Converter.Cli.Samples;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Samples;
using Converter.Cuda.Blas;
using Converter.Cuda.Models;
using Converter.Formats.IO;

namespace Converter.Cli.Commands.Eval;

/// <summary>
/// Which text and how much of it an evaluation runs on (docs/exl3-format.md §6.1: consecutive rows of the text
/// tokenized once), and where and in which arithmetic the models' forward runs.
/// </summary>
public sealed record EvalData(TextSource Text, int Rows, int Length, string Device = "auto", GpuMath GpuMath = GpuMath.Fp32);

/// <summary>The --text, --rows, --length, --device and --gpu-math options that eval, ppl and compare share, declared and bound once.</summary>
public sealed class EvalDataOptions
{
    public const int DefaultRows = 16;
    public const int DefaultLength = 256;

    private readonly Option<string?> _text = new("--text") { Description = "Evaluation text file. Default: the built-in held-out English text of samples/data/eval-heldout.txt" };
    private readonly Option<int> _rows = new("--rows") { Description = "Number of rows (consecutive windows of the tokenized text)", DefaultValueFactory = _ => DefaultRows };
    private readonly Option<int> _length = new("--length") { Description = "Tokens per row", DefaultValueFactory = _ => DefaultLength };

    private readonly Option<string> _device = new("--device")
    {
        Description = "Where the models' matrix products run: cuda:N, cpu, or auto (cuda:0 when a usable GPU is present)",
        DefaultValueFactory = _ => "auto",
    };

    private readonly Option<string> _gpuMath = new("--gpu-math")
    {
        Description = "Arithmetic of the GPU forward's matrix products: fp32, or tf32 (tensor cores, faster; ~1e-3 relative error per product, " +
            "which also perturbs what is measured). No effect on the CPU",
        DefaultValueFactory = _ => "fp32",
    };

    public IEnumerable<Option> Options => [_text, _rows, _length, _device, _gpuMath];

    /// <summary>--text, --rows and --length without --device, for a command that declares its own (codebooks --confirm).</summary>
    public IEnumerable<Option> RowOptions => [_text, _rows, _length];

    public EvalData Bind(ParseResult parse) => BindRows(parse, BindDevice(parse), BindGpuMath(parse));

    /// <summary>The rows with a device (and GPU math) bound elsewhere; only <see cref="RowOptions"/> need be on the command.</summary>
    public EvalData BindRows(ParseResult parse, string device, GpuMath math = GpuMath.Fp32)
    {
        int rows = parse.GetValue(_rows), length = parse.GetValue(_length);
        if (rows < 1)
            throw new UsageException($"--rows must be at least 1, got {rows}");
        if (length < 2)
            throw new UsageException($"--length must be at least 2 (a row predicts its tokens 1…L−1), got {length}");
        var text = parse.GetValue(_text) is { } path ? TextSource.FromFile(path) : BuiltInSamples.EvaluationText;
        return new EvalData(text, rows, length, device, math);
    }

    /// <summary>--gpu-math alone, for a command whose rows come from elsewhere (ppl --ids).</summary>
    public GpuMath BindGpuMath(ParseResult parse) =>
        GpuForwardOptions.ParseMath(parse.GetValue(_gpuMath)!) ?? throw new UsageException($"--gpu-math must be fp32 or tf32, got '{parse.GetValue(_gpuMath)}'");

    /// <summary>--device alone, for a command whose rows come from elsewhere (ppl --ids).</summary>
    public string BindDevice(ParseResult parse)
    {
        var device = parse.GetValue(_device)!;
        ComputeBackend.CheckOption(device);
        return device;
    }

    /// <summary>Those of --text, --rows and --length the command line gives explicitly (not by default).</summary>
    public IReadOnlyList<string> GivenRowOptions(ParseResult parse) =>
        new Option[] { _text, _rows, _length }.Where(o => parse.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToList();
}
