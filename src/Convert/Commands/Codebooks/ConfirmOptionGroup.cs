using System.CommandLine;
using System.Globalization;
using Converter.Cli.Commands.Convert;
using Converter.Cli.Commands.Eval;
using Converter.Conversion.Confirmation;
using Converter.Trellis.Codebooks;

namespace Converter.Cli.Commands.Codebooks;

/// <summary>
/// The options of `codebooks --confirm MODEL_DIR`, declared and bound once: the model, the conversions' bits, seeds,
/// folder, head bits and calibration (convert's options) and the comparison's rows (compare's, less --device, which
/// the codebooks command declares for the screen too). Where the multipliers come from is the command's decision.
/// </summary>
public sealed class ConfirmOptionGroup
{
    private readonly Option<string?> _model = new("--confirm")
    {
        Description = "Confirm end to end on MODEL_DIR: convert it with exllamav3's locked multiplier and with each of the screen's top --top " +
            "(or each multiplier --codebook lists, without a screen) at each --confirm-seeds, and tabulate KL and top-1 agreement against the " +
            "original per multiplier, with the KL ratio to the locked multiplier paired by seed. Only the locked multiplier's outputs run on exllamav3",
    };

    private readonly Option<double> _bits = new("--confirm-bits") { Description = "Bits per weight of a confirmation's conversions, 1..8", DefaultValueFactory = _ => 2.0 };

    private readonly Option<string> _seeds = new("--confirm-seeds")
    {
        Description = "Comma-separated conversion seeds (sign flips and calibration rows) of a confirmation",
        DefaultValueFactory = _ => "0,1,2",
    };

    private readonly Option<string?> _out = new("--confirm-out")
    {
        Description = "Folder of a confirmation's conversions, one subfolder per multiplier and seed; a finished one is reused by a re-run, an interrupted one " +
            "resumed, anything else there refused. Default: out/<model>-confirm",
    };

    private readonly Option<int> _headBits = new("--head-bits") { Description = "Bits of lm_head in a confirmation's conversions, 1..8, or 16 for fp16", DefaultValueFactory = _ => 6 };
    private readonly CalibrationOptions _calibration = new();
    private readonly EvalDataOptions _evalData = new();

    public IEnumerable<Option> Options => OnlyWithModel.Prepend(_model);

    /// <summary>The options that mean something only with --confirm.</summary>
    private IEnumerable<Option> OnlyWithModel => new Option[] { _bits, _seeds, _out, _headBits }.Concat(_calibration.Options).Concat(_evalData.RowOptions);

    public bool IsGiven(ParseResult parse) => parse.GetValue(_model) is not null;

    /// <summary>The first confirmation option given explicitly, by name, or null: an error without --confirm.</summary>
    public string? Stray(ParseResult parse) => OnlyWithModel.FirstOrDefault(o => parse.GetResult(o) is { Implicit: false })?.Name;

    /// <summary>Binds and validates the options for the multipliers the command chose; bad values raise <see cref="UsageException"/>.</summary>
    public ConfirmOptions Bind(ParseResult parse, CodebookKind kind, int? top, IReadOnlyList<uint> multipliers, string device, int threads)
    {
        double bits = BitWidths.Target(parse.GetValue(_bits), "--confirm-bits");
        int headBits = BitWidths.Head(parse.GetValue(_headBits));
        var seeds = new List<int>();
        foreach (var item in (parse.GetValue(_seeds) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out var seed))
                throw new UsageException($"--confirm-seeds: '{item}' is not a seed (a non-negative integer)");
            seeds.Add(seed);
        }
        if (seeds.Count == 0)
            throw new UsageException("--confirm-seeds needs at least one value");
        var model = parse.GetValue(_model)!;
        var (calRows, calCols, calData) = _calibration.Bind(parse);
        var rows = _evalData.BindRows(parse, device);
        var settings = new ConfirmationSettings
        {
            ModelDir = model,
            OutDir = parse.GetValue(_out) ?? Path.Combine("out", Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(model))) + "-confirm"),
            Bits = bits,
            HeadBits = headBits,
            CalRows = calRows,
            CalCols = calCols,
            CalData = calData,
            EvalText = rows.Text,
            EvalRows = rows.Rows,
            EvalLength = rows.Length,
            Device = device,
            Threads = threads,
        };
        return new ConfirmOptions(settings, kind, seeds.Distinct().ToList(), top, multipliers);
    }
}
