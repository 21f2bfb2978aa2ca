using System.CommandLine;
using System.Globalization;
using Converter.Cli.Samples;
using Converter.Conversion.Calibration;
using Converter.Conversion.Pipeline;
using Converter.Cuda.Models;
using Converter.Formats.IO;
using Converter.Regularize.Quantization;
using Converter.Trellis.Codebooks;

namespace Converter.Cli.Commands.Convert;

/// <summary>Definition and binding of `trellis convert`; the work is in <see cref="ConversionPipeline"/>.</summary>
public sealed class ConvertCommand
{
    private readonly Argument<string?> _model = new("MODEL_DIR")
    {
        Description = "Hugging Face model directory (config.json, tokenizer.json, *.safetensors). Default: the sample model samples/tiny-llama of a clone of the repository",
        Arity = ArgumentArity.ZeroOrOne,
    };

    private readonly Option<string?> _out = new("--out", "-o") { Description = "Output directory. Default: out/<model>-exl3-<bits>bpw" };
    private readonly Option<double> _bits = new("--bits", "-b") { Description = "Target average bits per weight, 1..8 (fractional targets mix integer K across tensors)", DefaultValueFactory = _ => 4.0 };
    private readonly Option<int> _headBits = new("--head-bits") { Description = "Bits of lm_head, 1..8, or 16 to keep it in fp16", DefaultValueFactory = _ => 6 };
    private readonly Option<string> _codebook = new("--codebook", "-c") { Description = "Codebook: " + CodebookRegistry.Names, DefaultValueFactory = _ => "mul1" };
    private readonly Option<string?> _multiplier = new("--multiplier")
    {
        Description = "Codebook multiplier (hex 0x… or decimal), for codebook experiments. exllamav3 decodes only the codebook's default " +
            "(mcg 0xCBAC1FED, mul1 0x83DCD12D), so any other is refused unless --allow-nonstandard-multiplier is given",
    };

    private readonly Option<bool> _allowNonstandardMultiplier = new(AllowNonstandardMultiplierOption)
    {
        Description = "Write a model with a --multiplier other than the codebook's default anyway. Stock exllamav3 decodes with its own fixed multiplier, " +
            "so it loads such a model without error and produces garbage; the output is marked in quantization_config." + NonstandardMultiplier.ConfigKey +
            " and its README.md, and inspect and eval warn. Only trellis (eval, ppl, inspect) reads it correctly",
    };
    private readonly CalibrationOptions _calibration = new();
    private readonly QuantizerOptions _quantizer = new();
    private readonly Option<string?> _workDir = new("--work-dir") { Description = "Work directory for checkpoints and per-module files. Default: <out>.work" };
    private readonly Option<bool> _resume = new("--resume") { Description = "Continue an interrupted conversion from its work directory" };
    private readonly Option<string> _device = new("--device")
    {
        Description = "Where to run: cuda:N (a GPU), cpu, or auto (cuda:0 when a usable GPU and driver are present, else the CPU). " +
            "A list, cuda:0,cuda:1,…, spreads each module's linears over those GPUs by their measured speed (the first also runs the " +
            "calibration forwards); the output is the same as on one. cpu,cpu splits the CPU's threads between two workers the same way",
        DefaultValueFactory = _ => "auto",
    };
    private readonly Option<string> _gpuMath = new("--gpu-math")
    {
        Description = "Arithmetic of the GPU calibration forward's matrix products: tf32 (tensor cores: 3.4x faster forward at 250x2048 " +
            "on an H200, ~1e-3 relative error per product, tiny-llama's KL unchanged; recorded in quantization_config." + ConversionPipeline.ForwardMathConfigKey +
            ") or fp32. Hessians, proxy errors and LDLQ stay FP32. No effect on the CPU",
        DefaultValueFactory = _ => "tf32",
    };
    private readonly Option<string> _hessianMath = new("--hessian-math")
    {
        Description = "Arithmetic of the products the GPU capture's Hessian (Gram) sums add up: fp32 (SSYRK) or tf32 (one tensor-core GEMM " +
            "per stripe; recorded in quantization_config." + ConversionPipeline.HessianMathConfigKey + "). The sums stay float64. No effect on the CPU",
        DefaultValueFactory = _ => "fp32",
    };
    private readonly Option<string> _calibrationStates = new("--calibration-states")
    {
        Description = "Where a GPU run keeps the calibration rows' hidden states between modules: gpu (each layer runs on them in place; " +
            "the forward of an 8B layer over 250x2048 tokens without 64 MB host round trips per 2-row chunk), host, or auto (gpu when " +
            "the memory estimate fits within 85% of the free GPU memory, else host). The output does not depend on it",
        DefaultValueFactory = _ => "auto",
    };
    private readonly Option<double?> _gpuMemory = new("--gpu-memory")
    {
        Description = "GiB of GPU memory the job may plan on, per GPU (default: all that is free): the memory estimate must fit 85% of it. When " +
            "the normal plan does not, the job runs lean (Hessians finalized first, weight cache capped; then one linear in flight, slower), " +
            "and --calibration-states auto keeps the states on the host when even that does not fit. For a smaller or shared GPU; it bounds the plan, not each allocation",
    };
    private readonly Option<string> _outScales = new("--out-scales") { Description = "Output channel scales: always, never or auto (docs/exl3-format.md §3.3)", DefaultValueFactory = _ => "always" };
    private readonly Option<string> _hessian = new("--hessian") { Description = "Hessian basis for LDLQ: exact (rotated with the input scales) or sign (exllamav3: sign flips only)", DefaultValueFactory = _ => "exact" };
    private readonly Option<int> _seed = new("--seed") { Description = "Seed of sign flips and calibration row choice", DefaultValueFactory = _ => 0 };
    private readonly Option<int> _shardSize = new("--shard-size") { Description = "Maximum shard size in MiB (a module is never split)", DefaultValueFactory = _ => 8192 };
    private readonly Option<bool> _overwrite = new("--overwrite") { Description = "Replace a non-empty output directory" };
    private readonly Option<int> _threads = new("--threads") { Description = "Encoder threads (0 = all processors)", DefaultValueFactory = _ => 0 };
    private readonly Option<int> _linearsInFlight = new("--linears-in-flight")
    {
        Description = "Linears of a module quantized at once (0 = auto: 2 on a GPU, so one linear's host work overlaps another's GPU work, " +
            "16 in a module of experts, whose same-shaped linears then share encoder launches; 1 on the CPU). The output does not depend on it",
        DefaultValueFactory = _ => 0,
    };
    private readonly Option<bool> _stageStash = new("--stage-stash")
    {
        Description = "With the sequential capture, keep each calibration stream's activations at a decoder block's stage boundaries (after the " +
            "attention, after o_proj) so that each later stage starts there instead of re-running the block from its input. On by default (on a GPU " +
            "where the memory plan fits it: tokens x hidden x 4 bytes per stream); --stage-stash false recomputes, with less memory. The output does not depend on it",
        DefaultValueFactory = _ => true,
    };
    private readonly Option<string?> _timeline = new("--timeline")
    {
        Description = "Write where the time went to FILE as Chrome trace events (each module's capture, quantize and forward, each linear's stages " +
            "on the thread that ran them; open in Perfetto or chrome://tracing). Rewritten after every module",
    };
    private readonly Option<bool> _timelineGpu = new("--timeline-gpu")
    {
        Description = "With --timeline on a CUDA device: also record every kernel, copy and fill the GPU ran and every CUDA driver call, through " +
            "CUPTI (libcupti.so, from the CUDA toolkit), so the GPU's idle gaps and what the host did in them can be read " +
            "(tools/gpu-gaps.py). Adds a few microseconds per launch",
    };
    private readonly Option<double> _checkpointInterval = new("--checkpoint-interval") { Description = "Seconds between checkpoints", DefaultValueFactory = _ => 120 };
    private readonly Option<bool> _skipResourceCheck = new("--skip-resource-check")
    {
        Description = "Run even when the estimate of host memory, GPU memory and disk the job needs exceeds what is free (the estimate is logged either way)",
    };
    private readonly Option<string?> _measurement = new("--measurement")
    {
        Description = "A `trellis measure` file of this model: spend a fractional --bits budget where the measured output KL is most sensitive " +
            "instead of uniformly. The uniform allocation is converted too and both are evaluated on held-out rows; the better one is shipped " +
            "(recorded in quantization_config.allocation)",
    };
    private readonly Option<bool> _noAllocationCheck = new("--no-allocation-check")
    {
        Description = "With --measurement: ship the measured allocation without converting and evaluating the uniform one against it",
    };
    private readonly Option<int?> _stopAfter = new("--stop-after") { Description = "Stop after N modules as if interrupted (for testing resume)", Hidden = true };
    private readonly Option<bool> _json = new("--json") { Description = "Print the result summary as JSON on stdout" };

    public const string AllowNonstandardMultiplierOption = "--allow-nonstandard-multiplier";

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var command = new Command("convert",
            "Convert a Hugging Face model to EXL3 trellis-coded weights at a target bits per weight, streaming one module at a time, " +
            "with checkpoints (resume with --resume). Writes a model exllamav3 can load, plus trellis-convert.json with per-tensor statistics " +
            "and a README.md model card. " +
            "Architectures: " + string.Join(", ", Converter.Models.Architectures.ArchitectureCatalog.All.Select(a => a.HfName)) + ".");
        command.Arguments.Add(_model);
        Option[] options = [_out, _bits, _headBits, _codebook, _multiplier, _allowNonstandardMultiplier, .. _calibration.Options, _workDir, _resume, _device,
            _gpuMath, _hessianMath, _calibrationStates, _gpuMemory, _outScales, _hessian, .. _quantizer.Options, _seed, _shardSize, _overwrite, _threads, _linearsInFlight, _stageStash, _timeline, _timelineGpu, _checkpointInterval, _skipResourceCheck, _measurement, _noAllocationCheck,
            _stopAfter, _json];
        foreach (var o in options)
            command.Options.Add(o);
        command.SetAction(parse => run(context => ConvertRun.Execute(Bind(parse), parse.GetValue(_json), context)));
        return command;
    }

    public ConvertSettings Bind(ParseResult parse)
    {
        double bits = BitWidths.Target(parse.GetValue(_bits), "--bits");
        int headBits = BitWidths.Head(parse.GetValue(_headBits));

        CodebookSpec codebook;
        try
        {
            codebook = CodebookSpec.Parse(parse.GetValue(_codebook)!);
            if (parse.GetValue(_multiplier) is { } m)
                codebook = CodebookSpec.Parse($"{codebook.Name}:{m}");
        }
        catch (FormatException e)
        {
            throw new UsageException($"--codebook/--multiplier: {e.Message}");
        }
        if (!codebook.IsDefaultMultiplier && !parse.GetValue(_allowNonstandardMultiplier))
        {
            throw new UsageException($"--multiplier {codebook.MultiplierHex}: {NonstandardMultiplier.Consequence(codebook)}. " +
                $"Refused; pass {AllowNonstandardMultiplierOption} to write it anyway (marked in quantization_config.{NonstandardMultiplier.ConfigKey})");
        }

        var device = parse.GetValue(_device)!;
        DeviceSet.Entries(device);
        var gpuMath = GpuForwardOptions.ParseMath(parse.GetValue(_gpuMath)!)
            ?? throw new UsageException($"--gpu-math must be fp32 or tf32, got '{parse.GetValue(_gpuMath)}'");
        var hessianMath = GpuForwardOptions.ParseMath(parse.GetValue(_hessianMath)!)
            ?? throw new UsageException($"--hessian-math must be fp32 or tf32, got '{parse.GetValue(_hessianMath)}'");
        long? gpuMemory = parse.GetValue(_gpuMemory) switch
        {
            null => null,
            > 0 and var gib when gib * (1L << 30) < long.MaxValue => (long)(gib * (1L << 30)),
            var gib => throw new UsageException($"--gpu-memory must be a positive number of GiB, got {gib}"),
        };
        var calibrationStates = StatePlacementNames.Parse(parse.GetValue(_calibrationStates)!)
            ?? throw new UsageException($"--calibration-states must be auto, gpu or host, got '{parse.GetValue(_calibrationStates)}'");

        var outScales = parse.GetValue(_outScales) switch
        {
            "always" => OutScalesMode.Always,
            "never" => OutScalesMode.Never,
            "auto" => OutScalesMode.Auto,
            var s => throw new UsageException($"--out-scales must be always, never or auto, got '{s}'"),
        };
        var basis = parse.GetValue(_hessian) switch
        {
            "exact" => HessianBasis.Exact,
            "sign" => HessianBasis.SignOnly,
            var s => throw new UsageException($"--hessian must be exact or sign, got '{s}'"),
        };
        var (calRows, calCols, calData) = _calibration.Bind(parse);
        int linearsInFlight = parse.GetValue(_linearsInFlight);
        if (linearsInFlight is < 0 or > 32)
            throw new UsageException($"--linears-in-flight must be 0 (auto) or 1..32, got {linearsInFlight}");
        int shard = parse.GetValue(_shardSize);
        if (shard < 1)
            throw new UsageException("--shard-size must be at least 1 MiB");

        var measurement = parse.GetValue(_measurement);
        if (measurement is null && parse.GetValue(_noAllocationCheck))
            throw new UsageException("--no-allocation-check applies only with --measurement");
        if (parse.GetValue(_timelineGpu) && parse.GetValue(_timeline) is null)
            throw new UsageException("--timeline-gpu applies only with --timeline FILE");
        if (measurement is not null && !File.Exists(measurement))
            throw new UsageException($"--measurement {measurement}: file not found (make one with trellis measure)");
        var modelDir = parse.GetValue(_model) ?? SampleLocator.RequireSampleModel();
        var outDir = parse.GetValue(_out)
            ?? Path.Combine("out", $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir)))}-exl3-{bits.ToString("0.0#", CultureInfo.InvariantCulture)}bpw");
        return new ConvertSettings
        {
            ModelDir = modelDir,
            OutDir = outDir,
            WorkDir = parse.GetValue(_workDir) ?? Path.TrimEndingDirectorySeparator(outDir) + ".work",
            Bits = bits,
            HeadBits = headBits,
            Codebook = codebook,
            CalRows = calRows,
            CalCols = calCols,
            CalData = calData,
            OutScales = outScales,
            HessianBasis = basis,
            Tuning = _quantizer.Bind(parse),
            QuantizerChosen = _quantizer.Chosen(parse),
            Seed = parse.GetValue(_seed),
            ShardBytes = (long)shard << 20,
            Resume = parse.GetValue(_resume),
            Overwrite = parse.GetValue(_overwrite),
            Threads = Math.Max(0, parse.GetValue(_threads)),
            LinearsInFlight = linearsInFlight,
            StageStash = parse.GetValue(_stageStash),
            TimelinePath = parse.GetValue(_timeline),
            TimelineGpu = parse.GetValue(_timelineGpu),
            Device = device,
            GpuMath = gpuMath,
            HessianMath = hessianMath,
            CalibrationStates = calibrationStates,
            GpuMemoryBudgetBytes = gpuMemory,
            CheckpointInterval = TimeSpan.FromSeconds(Math.Max(0, parse.GetValue(_checkpointInterval))),
            SkipResourceCheck = parse.GetValue(_skipResourceCheck),
            StopAfterModules = parse.GetValue(_stopAfter),
            MeasurementPath = measurement,
            CheckAllocation = !parse.GetValue(_noAllocationCheck),
        };
    }
}
