using System.CommandLine;
using System.Globalization;
using Converter.Cli.Commands.Convert;
using Converter.Cli.Samples;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Pipeline.Allocation;
using Converter.Conversion.Samples;
using Converter.Formats.IO;
using Converter.Trellis.Codebooks;

namespace Converter.Cli.Commands.Measure;

/// <summary>Definition and binding of `trellis measure`; the work is in <see cref="SensitivityMeasurement"/>.</summary>
public sealed class MeasureCommand
{
    /// <summary>exllamav3's practical range: below 2 bits a model is rarely usable, above 6 the KL is at its floor.</summary>
    public const string DefaultCandidates = "2,3,4,5,6";

    private readonly Argument<string?> _model = new("MODEL_DIR")
    {
        Description = "Hugging Face model directory. Default: the sample model samples/tiny-llama of a clone of the repository",
        Arity = ArgumentArity.ZeroOrOne,
    };

    private readonly Option<string?> _out = new("--out", "-o") { Description = "Measurement file to write. Default: out/<model>-measurement.json" };
    private readonly Option<string> _candidates = new("--candidates") { Description = "Candidate K, comma-separated, each 1..8", DefaultValueFactory = _ => DefaultCandidates };
    // Nullable without a default value: help would print the enum's name ("Tensor") as the default; the description says it.
    private readonly Option<MeasureGranularity?> _granularity = new("--granularity")
    {
        Description = "What is quantized alone at each K, and so what convert --measurement gives one K: tensor (each linear; a layer's routed " +
            "experts together, as exllamav3's fused expert kernels take one K for them all) or group (a layer's q/k/v, o, gate/up, down, routed experts). " +
            "The same quantization work either way; tensor costs more forwards of the measurement rows (one per unit and K). Default: tensor",
        HelpName = string.Join('|', MeasureGranularityUnits.Names),
        CustomParser = result => ParseChoice(result, "--granularity", Enum.GetValues<MeasureGranularity>()),
    };
    private readonly Option<MeasureCompensation?> _compensation = new("--compensation")
    {
        Description = "block: after a unit is quantized, the later sublayers of its block take the drift targets the default quantizer gives them " +
            "(unquantized) before the KL is taken, so it measures what a default conversion leaves of the unit's error (v_proj's falls by 30-50% on " +
            "tiny-llama); none: the unit alone in the original model, what exllamav3's quantizer (convert --fast) sees, and cheaper. Default: block",
        HelpName = "block|none",
        CustomParser = result => ParseChoice(result, "--compensation", [MeasureCompensation.Block, MeasureCompensation.None]),
    };
    private readonly Option<int> _compensationRows = new("--compensation-rows")
    {
        Description = "Calibration rows the block's refits are captured from (the first of them); 0: enough for 8 tokens per input of the widest refitted linear, at least 32",
        DefaultValueFactory = _ => 0,
    };
    private readonly Option<int> _rows = new("--rows") { Description = "Rows the output KL is measured over", DefaultValueFactory = _ => 8 };
    private readonly Option<int> _length = new("--length") { Description = "Tokens per measurement row", DefaultValueFactory = _ => 256 };
    private readonly Option<string?> _text = new("--text") { Description = "Text of the measurement rows (consecutive rows from its start). Default: the built-in calibration text" };
    private readonly Option<string> _codebook = new("--codebook", "-c") { Description = "Codebook the units are quantized with: " + CodebookRegistry.Names, DefaultValueFactory = _ => "mul1" };
    private readonly CalibrationOptions _calibration = new();
    private readonly Option<int> _seed = new("--seed") { Description = "Seed of sign flips and calibration row choice (as convert)", DefaultValueFactory = _ => 0 };
    private readonly Option<string> _device = new("--device") { Description = "Where to run: cuda:N, cpu, or auto", DefaultValueFactory = _ => "auto" };
    private readonly Option<int> _threads = new("--threads") { Description = "Encoder threads (0 = all processors)", DefaultValueFactory = _ => 0 };
    private readonly Option<double> _stateMemory = new("--state-memory")
    {
        Description = "GiB the measurement rows' perturbed states may take at once (one per unit and K, rows x length x hidden floats, from its " +
            "layer to the head). When they need more, the layers are measured in several passes, each holding only its own layers' states " +
            "(the layers after a pass are read again by every later one). 0: half the free host memory, less the calibration states",
        DefaultValueFactory = _ => 0,
    };
    private readonly Option<bool> _resume = new("--resume") { Description = "Continue an interrupted measurement from the checkpoint written after each pass (in <out>.work)" };
    private readonly Option<int?> _stopAfter = new("--stop-after") { Description = "Stop after N passes as if interrupted (for testing resume)", Hidden = true };
    private readonly Option<bool> _json = new("--json") { Description = "Print the measurement as JSON on stdout too" };

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var command = new Command("measure",
            "Measure how much the model's output KL grows when each linear (or, with --granularity group, each group of linears: a layer's attention " +
            "input, attention output, MLP input, MLP output) alone is quantized at each candidate K; a layer's routed experts are one unit. " +
            "By default the later sublayers of the unit's block are first refitted as the default quantizer refits them (--compensation). " +
            "`trellis convert --bits B --measurement FILE` then spends a fractional budget where the output is most sensitive. Costs about one " +
            "conversion per candidate K plus one forward of the measurement rows per unit and K (and with --compensation block the refits' captures).");
        command.Arguments.Add(_model);
        Option[] all = [_out, _candidates, _granularity, _compensation, _compensationRows, _rows, _length, _text, _codebook, .. _calibration.Options, _seed, _device, _threads, _stateMemory, _resume, _stopAfter, _json];
        foreach (var o in all)
            command.Options.Add(o);
        command.SetAction(parse => run(context => MeasureRun.Execute(Bind(parse), parse.GetValue(_json), context)));
        return command;
    }

    public (ConvertSettings Settings, MeasureOptions Options) Bind(ParseResult parse)
    {
        var candidates = ParseCandidates(parse.GetValue(_candidates)!);
        int rows = parse.GetValue(_rows), length = parse.GetValue(_length);
        if (rows < 1 || length < 2)
            throw new UsageException("--rows must be at least 1 and --length at least 2");
        var (calRows, calCols, calData) = _calibration.Bind(parse);
        CodebookSpec codebook;
        try
        {
            codebook = CodebookSpec.Parse(parse.GetValue(_codebook)!);
        }
        catch (FormatException e)
        {
            throw new UsageException($"--codebook: {e.Message}");
        }
        var device = parse.GetValue(_device)!;
        ComputeBackend.CheckOption(device);
        var modelDir = parse.GetValue(_model) ?? SampleLocator.RequireSampleModel();
        var outPath = parse.GetValue(_out)
            ?? Path.Combine("out", $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir)))}-measurement.json");
        var settings = new ConvertSettings
        {
            ModelDir = modelDir,
            OutDir = outPath,
            WorkDir = outPath + ".work",
            Bits = candidates[^1],
            Codebook = codebook,
            CalRows = calRows,
            CalCols = calCols,
            CalData = calData,
            Seed = parse.GetValue(_seed),
            Threads = Math.Max(0, parse.GetValue(_threads)),
            Device = device,
        };
        var text = parse.GetValue(_text) is { } textPath ? TextSource.FromFile(textPath) : BuiltInSamples.CalibrationText;
        double stateMemory = parse.GetValue(_stateMemory);
        if (!double.IsFinite(stateMemory) || stateMemory < 0)
            throw new UsageException($"--state-memory must be a number of GiB ≥ 0, got {stateMemory}");
        if (parse.GetValue(_stopAfter) is < 1)
            throw new UsageException("--stop-after must be at least 1");
        return (settings, new MeasureOptions(candidates, parse.GetValue(_granularity) ?? MeasureGranularity.Tensor, text, rows, length,
            parse.GetValue(_compensation) ?? MeasureCompensation.Block, Math.Max(0, parse.GetValue(_compensationRows)), (long)(stateMemory * (1L << 30)),
            parse.GetValue(_resume), parse.GetValue(_stopAfter)));
    }

    /// <summary>
    /// An enum option's value by its lower-case name, in any case; otherwise a parse error listing
    /// <paramref name="choices"/> in their order. Numbers are names of nothing (Enum.Parse would take "1").
    /// </summary>
    private static T? ParseChoice<T>(System.CommandLine.Parsing.ArgumentResult result, string option, IReadOnlyList<T> choices)
        where T : struct, Enum
    {
        var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
        foreach (var choice in choices)
        {
            if (string.Equals(choice.ToString(), text, StringComparison.OrdinalIgnoreCase))
                return choice;
        }
        result.AddError($"{option} must be {string.Join(" or ", choices.Select(c => c.ToString().ToLowerInvariant()))}, got '{text}'");
        return default;
    }

    /// <summary>"2,3,4" → [2, 3, 4], sorted and distinct; each 1..8.</summary>
    public static IReadOnlyList<int> ParseCandidates(string text)
    {
        var values = new SortedSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int k) || k is < 1 or > BitAllocation.MaxBits)
                throw new UsageException($"--candidates: '{part}' is not a K in 1..{BitAllocation.MaxBits}");
            values.Add(k);
        }
        if (values.Count == 0)
            throw new UsageException("--candidates: give at least one K, e.g. " + DefaultCandidates);
        return values.ToList();
    }
}
