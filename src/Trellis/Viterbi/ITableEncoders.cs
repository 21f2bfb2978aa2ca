namespace Converter.Trellis.Viterbi;

/// <summary>
/// Hands out an encoder for any codebook table at a K, for work that searches many tables in turn (a multiplier
/// screen): the GPU keeps one encoder per K and swaps its table, the CPU makes a new one.
/// </summary>
public interface ITableEncoders
{
    /// <summary>Where the search runs, for logs and records.</summary>
    string Device { get; }

    /// <summary>
    /// An encoder searching <paramref name="table"/> at <paramref name="bits"/>; valid until the next call with the
    /// same <paramref name="bits"/>.
    /// </summary>
    ITileEncoder For(ReadOnlyMemory<float> table, int bits);
}

/// <summary>
/// A new CPU encoder for each table: construction is cheap, and its per-thread workspaces (4 MiB at K = 2) are
/// small next to the seconds a table's tiles take to search.
/// </summary>
public sealed class CpuTableEncoders(int maxThreads = 0) : ITableEncoders
{
    public string Device => $"cpu x{(maxThreads > 0 ? maxThreads : Environment.ProcessorCount)}";

    public ITileEncoder For(ReadOnlyMemory<float> table, int bits) => new TrellisEncoder(table, bits, maxThreads);
}
