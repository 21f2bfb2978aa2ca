using Converter.Eval.Codebooks.Screening;

namespace Converter.Cli.Commands.Codebooks;

/// <summary>
/// Bound arguments of `trellis codebooks --screen FILE | --random N`: the candidates' source (read when the run
/// starts, so a bad list file fails with exit 1 naming its line), what to measure, and where results go.
/// </summary>
public sealed record ScreenOptions(
    ScreenSettings Settings,
    string? ListPath,
    int RandomCount,
    int RandomSeed,
    int? RankBy,
    int Top,
    string? JournalPath,
    string Device,
    string? TopListPath = null);
