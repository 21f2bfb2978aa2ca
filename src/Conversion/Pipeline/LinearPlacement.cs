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
}
