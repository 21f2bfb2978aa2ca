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
        var meanSquare = new (double Ms, int Tile)[total];
        for (int tk = 0; tk < tilesK; tk++)
        {
            for (int tn = 0; tn < tilesN; tn++)
            {
                double ss = 0;
                for (int r = 0; r < TileLayout.Side; r++)
                {
                    foreach (var v in w.Slice((tk * TileLayout.Side + r) * n + tn * TileLayout.Side, TileLayout.Side))
                        ss += (double)v * v;
                }
                meanSquare[tk * tilesN + tn] = (ss / TileLayout.Length, tk * tilesN + tn);
            }
        }
        var ordered = meanSquare.OrderBy(m => m.Ms).ThenBy(m => m.Tile).ToArray();
        foreach (var (_, tile) in ordered.TakeLast(extremes).Concat(ordered.Take(extremes)))
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

    /// <summary>Tile (tk, tn) of W (·, n), row-major.</summary>
    public static void CopyTile(ReadOnlySpan<float> w, int n, int tk, int tn, Span<float> rowMajor)
    {
        for (int r = 0; r < TileLayout.Side; r++)
            w.Slice((tk * TileLayout.Side + r) * n + tn * TileLayout.Side, TileLayout.Side).CopyTo(rowMajor.Slice(r * TileLayout.Side, TileLayout.Side));
    }
}
