using Converter.Trellis.Distortion;
using Converter.Trellis.Tiles;

namespace Converter.Regularize.ScaleSearch;

/// <summary>Outcome of the global scale search: the chosen g and every (scale, mse) point evaluated on the way.</summary>
public sealed record ScaleSearchResult(double Scale, IReadOnlyList<(double Scale, double Mse)> Evaluations);

/// <summary>
/// exllamav3's global scale search (docs/exl3-format.md §3.5, HEAD since da9688a): a coarse grid on every third sampled
/// tile (walked downhill, see <see cref="CoarseArgMin"/>), a five-point refinement on all sampled tiles, then a
/// parabola through the best point's neighbours.
/// </summary>
public static class GlobalScaleSearch
{
    /// <summary>Stage-1 grid 0.1, 0.3, …, 1.9.</summary>
    private static readonly double[] CoarseGrid = [0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9];

    /// <summary>Stage-2 step around the coarse winner.</summary>
    private const double FineStep = 0.075;

    /// <summary>Lower clamp on the result (§3.5: g = max(s, 0.01)).</summary>
    private const double MinScale = 0.01;

    /// <param name="quantizer">Encoder at the tensor's K and codebook.</param>
    /// <param name="tiles">Sampled tiles, 256 values each in trellis-position order.</param>
    public static ScaleSearchResult Search(TileQuantizer quantizer, ReadOnlySpan<float> tiles)
    {
        int count = tiles.Length / TileLayout.Length;
        if (count == 0 || tiles.Length != count * TileLayout.Length)
            throw new ArgumentException("scale search needs at least one whole tile", nameof(tiles));
        var evaluations = new List<(double, double)>();

        var everyThird = new float[((count + 2) / 3) * TileLayout.Length];
        for (int i = 0, o = 0; i < count; i += 3, o++)
            tiles.Slice(i * TileLayout.Length, TileLayout.Length).CopyTo(everyThird.AsSpan(o * TileLayout.Length));

        // The walk always starts from 0.9 and 1.1: those two share one encode (TileQuantizer.MeanSquaredErrors).
        var coarseMse = new double?[CoarseGrid.Length];
        var start = quantizer.MeanSquaredErrors(everyThird, [CoarseGrid[4], CoarseGrid[5]]);
        (coarseMse[4], coarseMse[5]) = (start[0], start[1]);
        evaluations.Add((CoarseGrid[4], start[0]));
        evaluations.Add((CoarseGrid[5], start[1]));
        double coarse = CoarseGrid[CoarseArgMin(i =>
        {
            if (coarseMse[i] is { } known)
                return known;
            double mse = quantizer.MeanSquaredError(everyThird, CoarseGrid[i]);
            coarseMse[i] = mse;
            evaluations.Add((CoarseGrid[i], mse));
            return mse;
        })];

        // The five refinement points in one encode; exllamav3 would evaluate a negative scale near the bottom of the
        // grid, but a non-positive g is never wanted.
        var points = Enumerable.Range(0, 5).Select(i => coarse + (i - 2) * FineStep).ToArray();
        var positive = points.Where(s => s > 0).ToArray();
        var errors = quantizer.MeanSquaredErrors(tiles, positive);
        Span<double> fine = stackalloc double[5];
        int best = 0;
        for (int i = 0, p = 0; i < fine.Length; i++)
        {
            fine[i] = points[i] > 0 ? errors[p++] : double.PositiveInfinity;
            if (points[i] > 0)
                evaluations.Add((points[i], fine[i]));
            if (fine[i] < fine[best])
                best = i;
        }

        double scale = coarse + (best - 2) * FineStep;
        if (best > 0 && best < fine.Length - 1)
            scale += FineStep * ParabolaOffset(fine[best - 1], fine[best], fine[best + 1]);
        return new ScaleSearchResult(Math.Max(scale, MinScale), evaluations);
    }

    /// <summary>
    /// The first index of the smallest value on the stage-1 grid, walking downhill from 0.9/1.1 instead of evaluating
    /// all ten points: rows are scaled to the codebook's RMS, so the minimum sits near 1 and the walk typically needs
    /// 3–4 of the 10 encodes. Equal to exllamav3's full scan whenever the MSE is unimodal along the grid (the Viterbi
    /// MSE against a scale is: too small a scale clips nothing but wastes levels, too large clips more and more).
    /// </summary>
    internal static int CoarseArgMin(Func<int, double> mse)
    {
        var values = new double?[CoarseGrid.Length];
        double At(int i) => values[i] ??= mse(i);
        int best = At(4) <= At(5) ? 4 : 5;
        // Downhill towards smaller scales: ties move down, since the full scan keeps the first (smallest) index.
        while (best > 0 && At(best - 1) <= At(best))
            best--;
        // Uphill side: only strictly smaller values move the answer to a larger scale.
        while (best < CoarseGrid.Length - 1 && At(best + 1) < At(best))
            best++;
        return best;
    }

    /// <summary>Vertex of the parabola through three equally spaced points, in steps from the middle, clamped to ±0.5.</summary>
    public static double ParabolaOffset(double y0, double y1, double y2)
    {
        double denominator = y0 - 2 * y1 + y2;
        if (!(denominator > 0) || double.IsInfinity(y0) || double.IsInfinity(y2))
            return 0;
        return Math.Clamp(0.5 * (y0 - y2) / denominator, -0.5, 0.5);
    }
}
