using Converter.Trellis.Tiles;

namespace Converter.Regularize.ScaleSearch;

/// <summary>
/// The tiles the global scale search looks at (docs/exl3-format.md §3.5, exllamav3's sample_scale_tiles): a wrapped
/// diagonal three tiles wide, plus the tiles of highest and lowest mean square, so the scale also suits outliers.
/// </summary>
public static class ScaleTileSampler
{
    private const int DiagonalWidth = 3;

    /// <summary>Returns the sampled tiles of W (k, n), each flattened row-major and permuted to trellis order.</summary>
    public static float[] Sample(ReadOnlySpan<float> w, int k, int n)
    {
        if (w.Length != (long)k * n || k % TileLayout.Side != 0 || n % TileLayout.Side != 0)
            throw new ArgumentException($"W has {w.Length} values, not a ({k}, {n}) matrix of whole 16×16 tiles");
        int tilesK = k / TileLayout.Side, tilesN = n / TileLayout.Side;
        int d = Math.Max(tilesK, tilesN);
        var picks = new List<(int Tk, int Tn)>();
        for (int i = 0; i < d; i++)
        {
            for (int width = 0; width < DiagonalWidth; width++)
                picks.Add((i % tilesK, (i + width) % tilesN));
        }

        int total = tilesK * tilesN;
        int extremes = Math.Min(Math.Max(8, 3 * d / 16), (total + 1) / 2);
        var meanSquare = MeanSquares(w, tilesK, tilesN, n);
        // The loudest tiles, then the quietest, each in ascending order: the two ends of the full sort.
        var loudest = Highest(meanSquare, extremes, ByMeanSquare);
        var quietest = Highest(meanSquare, extremes, Comparer<(double Ms, int Tile)>.Create((a, b) => ByMeanSquare.Compare(b, a))).Reverse();
        foreach (var (_, tile) in loudest.Concat(quietest))
            picks.Add((tile / tilesN, tile % tilesN));

        var result = new float[picks.Count * TileLayout.Length];
        Span<float> rowMajor = stackalloc float[TileLayout.Length];
        for (int p = 0; p < picks.Count; p++)
        {
            CopyTile(w, n, picks[p].Tk, picks[p].Tn, rowMajor);
            TileLayout.ToPositionOrder(rowMajor, result.AsSpan(p * TileLayout.Length, TileLayout.Length));
        }
        return result;
    }

    /// <summary>
    /// Every tile's mean square with its index, rows of tiles in parallel (each tile summed alone in the same order, so
    /// the result does not depend on threads; one thread took ~0.2 s of an 8B gate_proj's host work on 2 cores).
    /// </summary>
    private static unsafe (double Ms, int Tile)[] MeanSquares(ReadOnlySpan<float> w, int tilesK, int tilesN, int n)
    {
        var meanSquare = new (double Ms, int Tile)[tilesK * tilesN];
        fixed (float* p = w)
        {
            nint address = (nint)p;
            Parallel.For(0, tilesK, tk =>
            {
                for (int tn = 0; tn < tilesN; tn++)
                {
                    double ss = 0;
                    for (int r = 0; r < TileLayout.Side; r++)
                    {
                        float* row = (float*)address + (long)(tk * TileLayout.Side + r) * n + tn * TileLayout.Side;
                        for (int c = 0; c < TileLayout.Side; c++)
                            ss += (double)row[c] * row[c];
                    }
                    meanSquare[tk * tilesN + tn] = (ss / TileLayout.Length, tk * tilesN + tn);
                }
            });
        }
        return meanSquare;
    }

    /// <summary>Mean square, then tile index: the order exllamav3's sort leaves the tiles in (ties by position).</summary>
    private static readonly Comparer<(double Ms, int Tile)> ByMeanSquare =
        Comparer<(double Ms, int Tile)>.Create((a, b) => a.Ms.CompareTo(b.Ms) is var c and not 0 ? c : a.Tile.CompareTo(b.Tile));

    /// <summary>
    /// The <paramref name="count"/> greatest items under <paramref name="order"/>, in ascending order: what the tail of a
    /// full sort gives, with a heap of <paramref name="count"/> instead (sorting an 8B gate_proj's 229,376 tiles took
    /// ~0.1 s of one thread).
    /// </summary>
    private static IEnumerable<(double Ms, int Tile)> Highest((double Ms, int Tile)[] items, int count, IComparer<(double Ms, int Tile)> order)
    {
        var heap = new PriorityQueue<(double Ms, int Tile), (double Ms, int Tile)>(count + 1, order);
        foreach (var item in items)
        {
            if (heap.Count < count)
                heap.Enqueue(item, item);
            else if (count > 0 && order.Compare(item, heap.Peek()) > 0)
                heap.EnqueueDequeue(item, item);
        }
        var kept = new (double Ms, int Tile)[heap.Count];
        for (int i = 0; i < kept.Length; i++)
            kept[i] = heap.Dequeue();
        return kept;
    }

    /// <summary>Tile (tk, tn) of W (·, n), row-major.</summary>
    public static void CopyTile(ReadOnlySpan<float> w, int n, int tk, int tn, Span<float> rowMajor)
    {
        for (int r = 0; r < TileLayout.Side; r++)
            w.Slice((tk * TileLayout.Side + r) * n + tn * TileLayout.Side, TileLayout.Side).CopyTo(rowMajor.Slice(r * TileLayout.Side, TileLayout.Side));
    }
}
