using System.CommandLine;
using Converter.Conversion.Calibration;
using Converter.Formats.IO;

namespace Converter.Cli.Commands.Convert;

/// <summary>The calibration options convert and measure share: volume (scaled to the model when left out) and data.</summary>
public sealed class CalibrationOptions
{
    private readonly Option<int?> _calRows = new("--cal-rows")
    {
        Description = "Calibration rows. Default: scaled to the model, 125 tokens per hidden unit within 128 × 512 … 250 × 2048 tokens " +
            "(128 for the sample, 250 for 7B-class models; README \"Calibration data\")",
    };
    private readonly Option<int?> _calCols = new("--cal-cols") { Description = "Tokens per calibration row. Default: scaled to the model (512 … 2048, never past max_position_embeddings)" };
    private readonly Option<string?> _calData = new("--cal-data")
    {
        Description = "Calibration data file instead of the built-in mix: plain UTF-8 text (cut into windows of the tokenized text chosen by --seed), " +
            "or, for a name ending in .jsonl, one {\"text\": …} or {\"messages\": [{\"role\", \"content\"}, …]} object per line (dialogues rendered " +
            "through the model's chat template). Default: the built-in " + BuiltInCalibrationSet.Label + " mix of English prose, code, technical text, " +
            "other languages, dialogue and random token ids",
    };
    private readonly Option<string?> _calText = new("--cal-text") { Description = "Plain-text calibration file (as --cal-data FILE, always read as plain text)" };
    public IReadOnlyList<Option> Options => [_calRows, _calCols, _calData, _calText];

    /// <summary>Rows and tokens per row as given (null: scaled to the model), and the data to cut them from.</summary>
    public (int? Rows, int? Cols, CalibrationSource Data) Bind(ParseResult parse)
    {
        int? calRows = parse.GetValue(_calRows), calCols = parse.GetValue(_calCols);
        if (calRows < 1 || calCols < 16)
            throw new UsageException("--cal-rows must be at least 1 and --cal-cols at least 16");
        var calData = (parse.GetValue(_calData), parse.GetValue(_calText)) switch
        {
            (null, null) => CalibrationSource.BuiltIn,
            ({ } data, null) => CalibrationSource.FromFile(data),
            (null, { } text) => CalibrationSource.FromText(TextSource.FromFile(text)),
            _ => throw new UsageException("--cal-data and --cal-text both name calibration data; give one"),
        };
        return (calRows, calCols, calData);
    }
}
