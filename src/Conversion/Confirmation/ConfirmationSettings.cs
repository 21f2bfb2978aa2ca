using Converter.Conversion.Calibration;
using Converter.Conversion.Pipeline;
using Converter.Eval.Codebooks.Confirmation;
using Converter.Formats.IO;

namespace Converter.Conversion.Confirmation;

/// <summary>
/// What a multiplier confirmation converts and evaluates: the model, where the conversions go, the conversion
/// settings every variant shares (only the multiplier and the seed differ between variants), and the evaluation rows.
/// </summary>
public sealed record ConfirmationSettings
{
    public required string ModelDir { get; init; }

    /// <summary>The folder holding one subfolder per variant (<see cref="ConfirmationVariant.FolderName"/>).</summary>
    public required string OutDir { get; init; }

    /// <summary>Target bits per weight of every conversion, 1..8.</summary>
    public required double Bits { get; init; }

    public int HeadBits { get; init; } = 6;
    public int? CalRows { get; init; }
    public int? CalCols { get; init; }
    public CalibrationSource CalData { get; init; } = CalibrationSource.BuiltIn;

    /// <summary>The held-out text the comparison tokenizes, and how many rows of how many tokens.</summary>
    public required TextSource EvalText { get; init; }

    public int EvalRows { get; init; } = 16;
    public int EvalLength { get; init; } = 256;

    /// <summary>auto, cpu or cuda:N, for the conversions and the comparison.</summary>
    public string Device { get; init; } = "auto";
    public int Threads { get; init; }

    /// <summary>The conversion of one variant: `trellis convert` at these settings with the variant's multiplier and seed.</summary>
    public ConvertSettings For(ConfirmationVariant variant)
    {
        var outDir = Path.Combine(OutDir, variant.FolderName(Bits));
        return new ConvertSettings
        {
            ModelDir = ModelDir,
            OutDir = outDir,
            WorkDir = outDir + ".work",
            Bits = Bits,
            HeadBits = HeadBits,
            Codebook = variant.Codebook,
            CalRows = CalRows,
            CalCols = CalCols,
            CalData = CalData,
            Seed = variant.Seed,
            Device = Device,
            Threads = Threads,
        };
    }
}
