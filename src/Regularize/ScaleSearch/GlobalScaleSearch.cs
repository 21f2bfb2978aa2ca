using Converter.Trellis.Distortion;
using Converter.Trellis.Tiles;

namespace Converter.Regularize.ScaleSearch;

/// <summary>Outcome of the global scale search: the chosen g and every (scale, mse) point evaluated on the way.</summary>
public sealed record ScaleSearchResult(double Scale, IReadOnlyList<(double Scale, double Mse)> Evaluations);

/// <summary>
/// exllamav3's global scale search (docs/exl3-format.md §3.5, HEAD since da9688a): a coarse grid on every third sampled
/// tile (walked downhill, see <see cref="CoarseArgMin"/>), a five-point refinement on all sampled tiles (walked too),
/// then a parabola through the best point's neighbours.
/// </summary>
public static class GlobalScaleSearch
{
    /// <summary>Stage-1 grid 0.1, 0.3, …, 1.9.</summary>
    private static readonly double[] CoarseGrid = [0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9];

    /// <summary>Stage-2 step around the coarse winner.</summary>
    private const double FineStep = 0.075;

    /// <summary>Stage-2 points, centred on the coarse winner.</summary>
    private const int FinePoints = 5;

    /// <summary>Lower clamp on the result (§3.5: g = max(s, 0.01)).</summary>
    private const double MinScale = 0.01;

    /// <param name="quantizer">Encoder at the tensor's K and codebook.</param>
    /// <param name="tiles">Sampled tiles, 256 values each in trellis-position order.</param>
    public static ScaleSearchResult Search(TileQuantizer quantizer, float[] tiles)
    {
        int count = tiles.Length / TileLayout.Length;
        if (count == 0 || tiles.Length != count * TileLayout.Length)
            throw new ArgumentException("scale search needs at least one whole tile", nameof(tiles));
        var evaluations = new List<(double, double)>();

        var everyThird = new float[((count + 2) / 3) * TileLayout.Length];
        for (int i = 0, o = 0; i < count; i += 3, o++)
            tiles.AsSpan(i * TileLayout.Length, TileLayout.Length).CopyTo(everyThird.AsSpan(o * TileLayout.Length));

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

        // The refinement walks from the coarse winner as the coarse grid does: the winner and its two neighbours in
        // one encode, then outward, one encode a step, only while the MSE keeps falling (3 of the 5 points' encodes
        // when the winner stays the best, as it mostly does). Equal to exllamav3's five-point scan whenever the MSE is
        // unimodal along them; the best point's neighbours, which the parabola reads, are always among those encoded.
        // Checked against the full scan on 233 searches (the sample model at K 2–6, small-qwen2, rand-mixtral's
        // experts, session 24): the same point every time. On the CPU the search cost more than LDLQ on small linears.
        // exllamav3 would evaluate a negative scale near the bottom of the grid, but a non-positive g is never wanted.
        var points = Enumerable.Range(0, FinePoints).Select(i => coarse + (i - FinePoints / 2) * FineStep).ToArray();
        var fine = new double?[FinePoints];
        void Encode(ReadOnlySpan<int> indices)
        {
            var positive = new List<int>();
            foreach (int i in indices)
            {
                if (points[i] > 0)
                    positive.Add(i);
                else
                    fine[i] = double.PositiveInfinity;
            }
            if (positive.Count == 0)
                return;
            var errors = quantizer.MeanSquaredErrors(tiles, positive.Select(i => points[i]).ToArray());
            for (int p = 0; p < positive.Count; p++)
            {
                fine[positive[p]] = errors[p];
                evaluations.Add((points[positive[p]], errors[p]));
            }
        }
        Encode([FinePoints / 2 - 1, FinePoints / 2, FinePoints / 2 + 1]);
        int best = WalkDownhill(i =>
        {
            if (fine[i] is null)
                Encode([i]);
            return fine[i]!.Value;
        }, FinePoints, FinePoints / 2);

        double scale = coarse + (best - FinePoints / 2) * FineStep;
        if (best > 0 && best < FinePoints - 1)
            scale += FineStep * ParabolaOffset(fine[best - 1]!.Value, fine[best]!.Value, fine[best + 1]!.Value);
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
        return WalkDownhill(At, CoarseGrid.Length, At(4) <= At(5) ? 4 : 5);
    }

    /// <summary>
    /// The first index of the smallest of <paramref name="count"/> values, walking downhill from <paramref name="start"/>:
    /// the full scan's answer when the values are unimodal. Ties move down, since the full scan keeps the first
    /// (smallest) index; only strictly smaller values move the answer up.
    /// </summary>
    internal static int WalkDownhill(Func<int, double> at, int count, int start)
    {
        int best = start;
        while (best > 0 && at(best - 1) <= at(best))
            best--;
        while (best < count - 1 && at(best + 1) < at(best))
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
