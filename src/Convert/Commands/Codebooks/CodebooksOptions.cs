using Converter.Trellis.Codebooks;

namespace Converter.Cli.Commands.Codebooks;

/// <summary>Bound and validated arguments of `trellis codebooks`.</summary>
public sealed record CodebooksOptions(
    IReadOnlyList<CodebookSpec> Codebooks,
    IReadOnlyList<int> Bits,
    int Tiles,
    int Seed,
    bool BestScale,
    bool Json,
    string? PlotPath,
    string? DumpTableDir,
    int Threads);
