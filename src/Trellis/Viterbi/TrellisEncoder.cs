using System.Collections.Concurrent;
using Converter.Trellis.Tiles;

namespace Converter.Trellis.Viterbi;

/// <summary>
/// Encodes batches of tiles on all CPU threads against one codebook table at one K. Each worker owns a
/// <see cref="ViterbiWorkspace"/> reused across tiles and calls, so a batch allocates nothing per tile.
/// </summary>
public sealed class TrellisEncoder : ITileEncoder
{
    private readonly ReadOnlyMemory<float> _table;
    private readonly ConcurrentBag<ViterbiWorkspace> _workspaces = new();

    /// <param name="table">The 65536 codebook values the search compares against (already scaled if needed).</param>
    /// <param name="bits">K, 1..8.</param>
    /// <param name="maxThreads">Upper bound on worker threads; 0 means all processors.</param>
    public TrellisEncoder(ReadOnlyMemory<float> table, int bits, int maxThreads = 0)
    {
        TileLayout.CheckBits(bits);
        if (table.Length != Codebooks.CodebookTable.Size)
            throw new ArgumentException("a codebook table has 65536 entries", nameof(table));
        _table = table;
        Bits = bits;
        MaxThreads = maxThreads > 0 ? maxThreads : Environment.ProcessorCount;
    }

    public int Bits { get; }
    public int MaxThreads { get; }
    public string Device => $"cpu x{MaxThreads}";
    public ReadOnlySpan<float> Table => _table.Span;

    /// <inheritdoc />
    public void Encode(ReadOnlyMemory<float> targets, Memory<ushort> states, Memory<float> decoded)
    {
        int tiles = targets.Length / TileLayout.Length;
        if (targets.Length != tiles * TileLayout.Length || states.Length != targets.Length)
            throw new ArgumentException("targets and states must hold whole tiles of 256 values");
        if (!decoded.IsEmpty && decoded.Length != targets.Length)
            throw new ArgumentException("decoded must be empty or as long as targets", nameof(decoded));

        int workers = Math.Min(MaxThreads, tiles);
        if (workers <= 1)
        {
            EncodeRange(targets.Span, states.Span, decoded.Span, 0, tiles);
            return;
        }
        int next = -1;
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, _ =>
        {
            var ws = Rent();
            try
            {
                int tile;
                while ((tile = Interlocked.Increment(ref next)) < tiles)
                    EncodeOne(targets.Span, states.Span, decoded.Span, tile, ws);
            }
            finally
            {
                _workspaces.Add(ws);
            }
        });
    }

    private void EncodeRange(ReadOnlySpan<float> targets, Span<ushort> states, Span<float> decoded, int first, int count)
    {
        var ws = Rent();
        for (int tile = first; tile < first + count; tile++)
            EncodeOne(targets, states, decoded, tile, ws);
        _workspaces.Add(ws);
    }

    private void EncodeOne(ReadOnlySpan<float> targets, Span<ushort> states, Span<float> decoded, int tile, ViterbiWorkspace ws)
    {
        int offset = tile * TileLayout.Length;
        var tileStates = states.Slice(offset, TileLayout.Length);
        SimdViterbiEncoder.EncodeTile(_table.Span, targets.Slice(offset, TileLayout.Length), tileStates, ws);
        if (!decoded.IsEmpty)
        {
            var tileDecoded = decoded.Slice(offset, TileLayout.Length);
            var table = _table.Span;
            for (int t = 0; t < TileLayout.Length; t++)
                tileDecoded[t] = table[tileStates[t]];
        }
    }

    private ViterbiWorkspace Rent() => _workspaces.TryTake(out var ws) ? ws : new ViterbiWorkspace(Bits);
}
