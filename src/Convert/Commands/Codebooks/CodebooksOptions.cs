using Converter.Trellis.Codebooks;

namespace Converter.Cli.Commands.Codebooks;

/// <summary>
/// Bound and validated arguments of `trellis codebooks`; <paramref name="Screen"/> is set for a multiplier screen,
/// <paramref name="Confirm"/> for an end-to-end confirmation (after the screen when both are).
/// </summary>
public sealed record CodebooksOptions(
    IReadOnlyList<CodebookSpec> Codebooks,
    IReadOnlyList<int> Bits,
    int Tiles,
    int Seed,
    bool BestScale,
    bool Json,
    string? PlotPath,
    string? DumpTableDir,
    int Threads,
    ScreenOptions? Screen = null,
    ConfirmOptions? Confirm = null);
