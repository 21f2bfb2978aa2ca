using Converter.Formats.IO;

namespace Converter.Conversion.Calibration;

/// <summary>
/// Where calibration rows come from: the built-in mix (the default), a plain text file (`--cal-data FILE` or
/// `--cal-text FILE`, cut into windows as before, <see cref="Pipeline.CalibrationSet"/>), or a JSONL file of
/// <c>{"text": …}</c> / <c>{"messages": […]}</c> rows (`--cal-data FILE.jsonl`). Records, so bound options compare by value.
/// </summary>
public abstract record CalibrationSource
{
    /// <summary>What logs, the model card and quantization_config name.</summary>
    public abstract string Name { get; }

    public static CalibrationSource BuiltIn { get; } = new BuiltInMix();

    /// <summary>A user's file: JSONL when its name ends in .jsonl, else plain UTF-8 text.</summary>
    public static CalibrationSource FromFile(string path) =>
        path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) ? new JsonlFile(path) : new PlainText(TextSource.FromFile(path));

    public static CalibrationSource FromText(TextSource text) => new PlainText(text);

    public sealed override string ToString() => Name;

    public sealed record BuiltInMix : CalibrationSource
    {
        public override string Name => "built-in " + BuiltInCalibrationSet.Label;
    }

    public sealed record PlainText(TextSource Text) : CalibrationSource
    {
        public override string Name => Text.Name;
    }

    public sealed record JsonlFile(string Path) : CalibrationSource
    {
        public override string Name => Path;
    }
}
