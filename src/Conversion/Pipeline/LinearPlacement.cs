namespace Converter.Conversion.Pipeline;

/// <summary>
/// Which device quantizes each linear of a module when several do (<see cref="DeviceSet"/>). In the order the linears
/// start (largest first), each goes to the device that would finish it first, given the work already placed there and
/// the devices' measured speeds: longest-processing-time-first list scheduling, within 4/3 of the best finishing
/// time on identical devices. Ties go to the lower device, so equal speeds give a fixed placement. Where a linear
/// runs changes no number of the result, only when it is ready.
/// </summary>
public static class LinearPlacement
{
    /// <param name="work">Each linear's work (its padded weights), in the order the linears start.</param>
    /// <param name="speeds">Each device's speed (work per second); all positive.</param>
    /// <returns>The device of each linear, aligned with <paramref name="work"/>.</returns>
    public static int[] Assign(IReadOnlyList<double> work, IReadOnlyList<double> speeds)
    {
        if (speeds.Count == 0 || speeds.Any(s => !(s > 0) || double.IsInfinity(s)))
            throw new ArgumentException("every device needs a positive, finite speed", nameof(speeds));
        var busyUntil = new double[speeds.Count];
        var device = new int[work.Count];
        for (int i = 0; i < work.Count; i++)
        {
            int best = 0;
            double bestFinish = double.PositiveInfinity;
            for (int d = 0; d < speeds.Count; d++)
            {
                double finish = busyUntil[d] + work[i] / speeds[d];
                if (finish < bestFinish)
                    (best, bestFinish) = (d, finish);
            }
            device[i] = best;
            busyUntil[best] = bestFinish;
        }
        return device;
    }

    /// <summary>
    /// Whether a stage's linears share their output columns between the devices (<see cref="Regularize.Quantization.ColumnSplit"/>)
    /// instead of running whole where <see cref="Assign"/> puts them: when whole linears leave the last device
    /// finishing more than <see cref="SplitAbove"/> times the ideal (all the work spread by speed). Under the
    /// sequential capture o_proj and down_proj are stages of one linear, and q beside k and v is uneven: whole, two
    /// GPUs would quantize a llama-3-8b layer only 1.45× faster (150.8 of its 218 M weights on the busier one).
    /// </summary>
    public static bool SplitColumns(IReadOnlyList<double> work, IReadOnlyList<double> speeds)
    {
        if (speeds.Count < 2 || work.Count == 0)
            return false;
        var placed = Assign(work, speeds);
        double finish = Enumerable.Range(0, speeds.Count).Max(d => Enumerable.Range(0, work.Count).Where(i => placed[i] == d).Sum(i => work[i]) / speeds[d]);
        return finish > SplitAbove * work.Sum() / speeds.Sum();
    }

    /// <summary>
    /// A whole block (`--fast`) of an 8B on two equal GPUs finishes 1.077× the ideal whole and is not split: splitting
    /// every linear costs each a factor copy to the other device and halves its launches' width.
    /// </summary>
    public const double SplitAbove = 1.1;
}
