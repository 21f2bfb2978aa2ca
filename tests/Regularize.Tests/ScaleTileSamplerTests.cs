using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Tiles;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

/// <summary>The sampled tiles against §3.5's definition written out with a full sort (exllamav3's sample_scale_tiles).</summary>
public sealed class ScaleTileSamplerTests
{
    [TestCase(64, 64, false)]
    [TestCase(128, 512, false)]
    [TestCase(512, 128, true)]
    [TestCase(16, 16, false)]
    public void PicksTheDiagonalThenTheLoudestAndQuietestTilesAsAFullSortDoes(int k, int n, bool withTiesAndNaN)
    {
        var rng = new Random(k + n);
        var w = Enumerable.Range(0, k * n).Select(i => (float)(rng.NextDouble() - 0.5) * (1 + i % 7)).ToArray();
        if (withTiesAndNaN)
        {
            // Whole rows of zero tiles (equal mean squares, ordered by position) and a NaN tile.
            Array.Clear(w, 0, 3 * TileLayout.Side * n);
            w[5 * TileLayout.Side * n + 40] = float.NaN;
        }
        Assert.That(ScaleTileSampler.Sample(w, k, n), Is.EqualTo(Reference(w, k, n)));
    }

    private static float[] Reference(float[] w, int k, int n)
    {
        int tilesK = k / TileLayout.Side, tilesN = n / TileLayout.Side, d = Math.Max(tilesK, tilesN), total = tilesK * tilesN;
        var picks = new List<(int Tk, int Tn)>();
        for (int i = 0; i < d; i++)
        {
            for (int width = 0; width < 3; width++)
                picks.Add((i % tilesK, (i + width) % tilesN));
        }
        var tiles = new List<(double Ms, int Tile)>();
        for (int tk = 0; tk < tilesK; tk++)
        {
            for (int tn = 0; tn < tilesN; tn++)
            {
                double ss = 0;
                for (int r = 0; r < TileLayout.Side; r++)
                {
                    for (int c = 0; c < TileLayout.Side; c++)
                    {
                        double v = w[(tk * TileLayout.Side + r) * n + tn * TileLayout.Side + c];
                        ss += v * v;
                    }
                }
                tiles.Add((ss / TileLayout.Length, tk * tilesN + tn));
            }
        }
        int extremes = Math.Min(Math.Max(8, 3 * d / 16), (total + 1) / 2);
        var ordered = tiles.OrderBy(t => t.Ms).ThenBy(t => t.Tile).ToList();
        foreach (var (_, tile) in ordered.TakeLast(extremes).Concat(ordered.Take(extremes)))
            picks.Add((tile / tilesN, tile % tilesN));
        var result = new float[picks.Count * TileLayout.Length];
        var rowMajor = new float[TileLayout.Length];
        for (int p = 0; p < picks.Count; p++)
        {
            ScaleTileSampler.CopyTile(w, n, picks[p].Tk, picks[p].Tn, rowMajor);
            TileLayout.ToPositionOrder(rowMajor, result.AsSpan(p * TileLayout.Length, TileLayout.Length));
        }
        return result;
    }
}
