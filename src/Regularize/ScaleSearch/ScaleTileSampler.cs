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
        Check(w.Length, k, n);
        var picks = Picks(MeanSquares(w, k, n), k / TileLayout.Side, n / TileLayout.Side);
        var rowMajor = new float[picks.Count * TileLayout.Length];
        for (int p = 0; p < picks.Count; p++)
            CopyTile(w, n, picks[p].Tk, picks[p].Tn, rowMajor.AsSpan(p * TileLayout.Length, TileLayout.Length));
        return InPositionOrder(rowMajor);
    }

    /// <summary>Throws unless <paramref name="values"/> make a (k, n) matrix of whole 16×16 tiles.</summary>
    public static void Check(long values, int k, int n)
    {
        if (values != (long)k * n || k % TileLayout.Side != 0 || n % TileLayout.Side != 0)
            throw new ArgumentException($"W has {values} values, not a ({k}, {n}) matrix of whole 16×16 tiles");
    }

    /// <summary>
    /// The sampled tiles (tile row, tile column), in sample order, from every tile's mean square (<see cref="MeanSquares"/>:
    /// tilesK × tilesN, rows of tiles first).
    /// </summary>
    public static IReadOnlyList<(int Tk, int Tn)> Picks(ReadOnlySpan<double> meanSquares, int tilesK, int tilesN)
    {
        if (meanSquares.Length != (long)tilesK * tilesN)
            throw new ArgumentException($"{meanSquares.Length} mean squares for {tilesK} × {tilesN} tiles");
        int d = Math.Max(tilesK, tilesN);
        var picks = new List<(int Tk, int Tn)>();
        for (int i = 0; i < d; i++)
        {
            for (int width = 0; width < DiagonalWidth; width++)
                picks.Add((i % tilesK, (i + width) % tilesN));
        }

        int total = tilesK * tilesN;
        int extremes = Math.Min(Math.Max(8, 3 * d / 16), (total + 1) / 2);
        var indexed = new (double Ms, int Tile)[total];
        for (int t = 0; t < total; t++)
            indexed[t] = (meanSquares[t], t);
        // The loudest tiles, then the quietest, each in ascending order: the two ends of the full sort.
        var loudest = Highest(indexed, extremes, ByMeanSquare);
        var quietest = Highest(indexed, extremes, Comparer<(double Ms, int Tile)>.Create((a, b) => ByMeanSquare.Compare(b, a))).Reverse();
        foreach (var (_, tile) in loudest.Concat(quietest))
            picks.Add((tile / tilesN, tile % tilesN));
        return picks;
    }

    /// <summary>Row-major 16×16 tiles, one after another, each permuted to trellis-position order (a new array).</summary>
    public static float[] InPositionOrder(ReadOnlySpan<float> rowMajorTiles)
    {
        var result = new float[rowMajorTiles.Length];
        for (int p = 0; p < rowMajorTiles.Length / TileLayout.Length; p++)
            TileLayout.ToPositionOrder(rowMajorTiles.Slice(p * TileLayout.Length, TileLayout.Length), result.AsSpan(p * TileLayout.Length, TileLayout.Length));
        return result;
    }

    /// <summary>
    /// Every tile's mean square, rows of tiles first, rows of tiles in parallel (each tile summed alone, row-major, in
    /// float64: the result does not depend on threads, and a device summing in that order gets the same bits; one
    /// thread took ~0.2 s of an 8B gate_proj's host work on 2 cores).
    /// </summary>
    public static unsafe double[] MeanSquares(ReadOnlySpan<float> w, int k, int n)
    {
        Check(w.Length, k, n);
        int tilesK = k / TileLayout.Side, tilesN = n / TileLayout.Side;
        var meanSquare = new double[tilesK * tilesN];
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
                    meanSquare[tk * tilesN + tn] = ss / TileLayout.Length;
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
