using System.CommandLine;
using Converter.Conversion.Pipeline;
using Converter.Eval.Codebooks.Screening;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Tiles;

namespace Converter.Cli.Commands.Codebooks;

/// <summary>Definition and binding of `trellis codebooks`; the work is in <see cref="CodebooksRun"/>.</summary>
public sealed class CodebooksCommand
{
    private readonly Option<string> _codebooks = new("--codebook", "-c")
    {
        Description = "Comma-separated codebooks, each NAME or NAME:MULTIPLIER (hex 0x… or decimal). Names: " +
            CodebookRegistry.Names + ". Example: 3inst,mcg,mcg:0xFF7A83E5,mul1,mul1:0xAD9A2EC5",
        DefaultValueFactory = _ => string.Join(',', CodebookRegistry.All.Select(d => d.Name)),
    };

    private readonly Option<string> _bits = new("--bits", "-b")
    {
        Description = "Comma-separated bits per weight K, each 1..8",
        DefaultValueFactory = _ => "1,2,3,4",
    };

    private readonly Option<int> _tiles = new("--tiles")
    {
        Description = "Number of 256-weight tiles of N(0,1) data per measurement",
        DefaultValueFactory = _ => 256,
    };

    private readonly Option<int> _seed = new("--seed") { Description = "Seed of the Gaussian data", DefaultValueFactory = _ => 0 };

    private readonly Option<bool> _bestScale = new("--best-scale")
    {
        Description = "Also search the best global scale (as the converter does, docs/exl3-format.md §3.5) and report the MSE there",
    };

    private readonly Option<bool> _json = new("--json") { Description = "Print one JSON object {\"results\":[…]} on stdout instead of tables" };

    private readonly Option<string?> _plot = new("--plot") { Description = "Write an SVG: MSE relative to the bound against K, and each codebook's value histogram" };

    private readonly Option<string?> _dumpTable = new("--dump-table")
    {
        Description = "Write each codebook's 65536 decoded values as raw little-endian fp16 to DIR/<codebook>-<multiplier>.f16",
    };

    private readonly Option<int> _threads = new("--threads") { Description = "Encoder threads (0 = all processors)", DefaultValueFactory = _ => 0 };

    private readonly Option<string?> _screen = new("--screen")
    {
        Description = "Screen the multipliers listed in FILE (one per line, hex 0x… or decimal, # comments) of one --codebook family (mcg or " +
            "mul1, default mcg): each one's MSE per K with a 95% interval, and its paired difference from exllamav3's locked multiplier on the same tiles",
    };

    private readonly Option<int> _random = new("--random") { Description = "Screen N random odd 32-bit multipliers (seeded by --random-seed), alone or after --screen's list" };

    private readonly Option<int?> _randomSeed = new("--random-seed") { Description = "Seed of --random's multipliers (default: --seed)" };

    private readonly Option<int?> _rankBy = new("--rank-by") { Description = "Rank a screen by the paired difference at this K (default: its mean over --bits)" };

    private readonly Option<int> _top = new("--top")
    {
        Description = "Candidates a screen's table and plot show, and with --confirm the ones converted (then it must be given)",
        DefaultValueFactory = _ => 20,
    };

    private readonly Option<string?> _out = new("--out", "-o")
    {
        Description = "A screen's results as JSON lines, appended as they come; rerunning with the same settings skips the multipliers already there",
    };

    private readonly Option<string?> _topList = new("--top-list")
    {
        Description = "Write the top --top multipliers to FILE as a list --screen reads (ranked, with their paired differences as comments): " +
            "for re-screening on fresh tiles (--seed) or confirming with --screen FILE --confirm MODEL_DIR",
    };

    private readonly Option<string> _device = new("--device")
    {
        Description = "Where a screen encodes and a confirmation converts and evaluates: auto, cpu or cuda:N",
        DefaultValueFactory = _ => "auto",
    };

    private readonly ConfirmOptionGroup _confirm = new();

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var command = new Command("codebooks",
            "Compare trellis codebooks and multipliers: Viterbi-quantize i.i.d. N(0,1) tiles with each codebook " +
            "(normalized to unit RMS) and report the MSE per weight next to the rate-distortion bound 2^(-2K) and the " +
            "Lloyd-Max scalar quantizer, with codebook statistics. With --screen FILE or --random N: screen many multipliers of one " +
            "family against exllamav3's on the same tiles, with 95% intervals, ranked. With --confirm MODEL_DIR: convert the model with the " +
            "screen's top --top (or --codebook's multipliers) and exllamav3's at several seeds and compare them end to end.");
        Option[] options = [_codebooks, _bits, _tiles, _seed, _bestScale, _json, _plot, _dumpTable, _threads,
            _screen, _random, _randomSeed, _rankBy, _top, _out, _topList, _device, .. _confirm.Options];
        foreach (var option in options)
            command.Options.Add(option);
        command.SetAction(parse => run(context => CodebooksRun.Execute(Bind(parse), context)));
        return command;
    }

    private static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>Reads and validates the options; bad values raise <see cref="UsageException"/> (exit code 2).</summary>
    public CodebooksOptions Bind(ParseResult parse)
    {
        bool screen = parse.GetValue(_screen) is not null || Given(parse, _random);
        bool confirm = _confirm.IsGiven(parse);
        if (!confirm && _confirm.Stray(parse) is { } stray)
            throw new UsageException($"{stray} belongs to a confirmation (--confirm MODEL_DIR)");
        // --device also places a confirmation's conversions; everything else here only means something to a screen.
        var screenOnly = new Option[] { _randomSeed, _rankBy, _top, _out, _topList, _device }.Where(o => Given(parse, o) && !(confirm && o == _device)).ToList();
        if (!screen && screenOnly.Count > 0)
            throw new UsageException($"{screenOnly[0].Name} belongs to a multiplier screen (--screen FILE or --random N)");
        if (confirm && !screen && new Option[] { _bits, _tiles, _seed, _bestScale, _plot, _dumpTable }.FirstOrDefault(o => Given(parse, o)) is { } study)
            throw new UsageException($"{study.Name} is not part of a confirmation without a screen (a confirmation converts at --confirm-bits)");
        var specs = new List<CodebookSpec>();
        foreach (var item in SplitList(parse.GetValue(_codebooks), "--codebook"))
        {
            try
            {
                specs.Add(CodebookSpec.Parse(item));
            }
            catch (FormatException e)
            {
                throw new UsageException($"--codebook: {e.Message}");
            }
        }
        var bits = new List<int>();
        foreach (var item in SplitList(parse.GetValue(_bits), "--bits"))
        {
            if (!int.TryParse(item, out var k) || k < TileLayout.MinBits || k > TileLayout.MaxBits)
                throw new UsageException($"--bits: '{item}' is not a bit width K in {TileLayout.MinBits}..{TileLayout.MaxBits}");
            bits.Add(k);
        }
        int tiles = parse.GetValue(_tiles);
        if (tiles < 1)
            throw new UsageException("--tiles must be at least 1");
        int threads = parse.GetValue(_threads);
        if (threads < 0)
            throw new UsageException("--threads must be 0 (all) or positive");
        var options = new CodebooksOptions(specs.Distinct().ToList(), bits.Distinct().ToList(), tiles, parse.GetValue(_seed),
            parse.GetValue(_bestScale), parse.GetValue(_json), parse.GetValue(_plot), parse.GetValue(_dumpTable), threads);
        if (screen)
            options = options with { Screen = BindScreen(parse, options) };
        return confirm ? options with { Confirm = BindConfirm(parse, options) } : options;
    }

    /// <summary>
    /// A confirmation's multipliers come from a screen's ranking (--top N, which must be given: its default sizes a
    /// table, and twenty conversions per seed is no default) or, without a screen, from --codebook's list of one family.
    /// </summary>
    private ConfirmOptions BindConfirm(ParseResult parse, CodebooksOptions options)
    {
        const string Needs = "--confirm needs the multipliers to convert: --top N of a screen (--screen FILE or --random N), or --codebook listing them (mcg:0x…,mcg:0x…)";
        CodebookKind kind;
        int? top = null;
        IReadOnlyList<uint> multipliers = [];
        if (options.Screen is { } screen)
        {
            if (!Given(parse, _top))
                throw new UsageException(Needs);
            kind = screen.Settings.Kind;
            top = screen.Top;
        }
        else
        {
            var specs = options.Codebooks;
            if (!Given(parse, _codebooks) || specs.All(s => s.IsDefaultMultiplier))
                throw new UsageException(Needs);
            if (specs.Select(s => s.Kind).Distinct().Count() != 1 || specs[0].Kind == CodebookKind.ThreeInst)
                throw new UsageException("--codebook: a confirmation takes multipliers of one family whose multiplier can change: mcg or mul1");
            kind = specs[0].Kind;
            multipliers = specs.Select(s => s.Multiplier).ToList();
        }
        var device = parse.GetValue(_device)!;
        ComputeBackend.CheckOption(device);
        return _confirm.Bind(parse, kind, top, multipliers, device, options.Threads);
    }

    private ScreenOptions BindScreen(ParseResult parse, CodebooksOptions options)
    {
        if (options.BestScale || options.DumpTableDir is not null)
            throw new UsageException($"{(options.BestScale ? "--best-scale" : "--dump-table")} is not part of a multiplier screen");
        // A screen covers one family; the study's default of all three stands for "mcg" here.
        var kind = CodebookKind.Mcg;
        if (parse.GetResult(_codebooks) is { Implicit: false })
        {
            if (options.Codebooks.Count != 1 || options.Codebooks[0].Kind == CodebookKind.ThreeInst || !options.Codebooks[0].IsDefaultMultiplier)
                throw new UsageException("--codebook: a screen takes one family whose multiplier can change: mcg or mul1 (the candidates come from --screen/--random)");
            kind = options.Codebooks[0].Kind;
        }
        int random = parse.GetValue(_random);
        if (random < 0 || (parse.GetValue(_screen) is null && random < 1))
            throw new UsageException("--random must be at least 1");
        if (options.Tiles < ScreenSettings.MinTiles)
            throw new UsageException($"--tiles must be at least {ScreenSettings.MinTiles} for a screen (its intervals come from the per-tile spread)");
        int? rankBy = parse.GetValue(_rankBy);
        if (rankBy is { } k && !options.Bits.Contains(k))
            throw new UsageException($"--rank-by {k} is not one of --bits {string.Join(',', options.Bits)}");
        int top = parse.GetValue(_top);
        if (top < 1)
            throw new UsageException("--top must be at least 1");
        var device = parse.GetValue(_device)!;
        ComputeBackend.CheckOption(device);
        var settings = new ScreenSettings(kind, options.Bits.Order().ToList(), options.Tiles, options.Seed);
        return new ScreenOptions(settings, parse.GetValue(_screen), random, parse.GetValue(_randomSeed) ?? options.Seed, rankBy, top,
            parse.GetValue(_out), device, parse.GetValue(_topList));
    }

    private static IEnumerable<string> SplitList(string? value, string option)
    {
        var items = (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (items.Length == 0)
            throw new UsageException($"{option} needs at least one value");
        return items;
    }
}
