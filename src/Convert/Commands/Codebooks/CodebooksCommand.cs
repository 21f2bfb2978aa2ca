using System.CommandLine;
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

    public Command Build(Func<Func<CliContext, int>, int> run)
    {
        var command = new Command("codebooks",
            "Compare trellis codebooks and multipliers: Viterbi-quantize i.i.d. N(0,1) tiles with each codebook " +
            "(normalized to unit RMS) and report the MSE per weight next to the rate-distortion bound 2^(-2K) and the " +
            "Lloyd-Max scalar quantizer, with codebook statistics.");
        foreach (var option in new Option[] { _codebooks, _bits, _tiles, _seed, _bestScale, _json, _plot, _dumpTable, _threads })
            command.Options.Add(option);
        command.SetAction(parse => run(context => CodebooksRun.Execute(Bind(parse), context)));
        return command;
    }

    /// <summary>Reads and validates the options; bad values raise <see cref="UsageException"/> (exit code 2).</summary>
    public CodebooksOptions Bind(ParseResult parse)
    {
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
        return new CodebooksOptions(specs.Distinct().ToList(), bits.Distinct().ToList(), tiles, parse.GetValue(_seed),
            parse.GetValue(_bestScale), parse.GetValue(_json), parse.GetValue(_plot), parse.GetValue(_dumpTable), threads);
    }

    private static IEnumerable<string> SplitList(string? value, string option)
    {
        var items = (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (items.Length == 0)
            throw new UsageException($"{option} needs at least one value");
        return items;
    }
}
