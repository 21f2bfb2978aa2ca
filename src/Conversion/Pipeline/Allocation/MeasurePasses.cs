namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>
/// The modules one pass of `trellis measure` perturbs: <see cref="First"/> to <see cref="Last"/> (model module
/// indices). The pass starts there with the calibration state and the reference rows as the passes before left them,
/// and carries the states it perturbed on to the head.
/// </summary>
public sealed record MeasurePass(int First, int Last);

/// <summary>
/// Splits a measurement into passes so that the perturbed states in memory at once stay within a budget. Every
/// (unit, K) keeps one state of the measurement rows from its module to the head: 8 × 256 tokens of a 70B's 8,192
/// hidden floats are 64 MiB, and its 80 layers × 7 linears × 5 K are 2,800 of them (175 GiB). A pass holds only the
/// states of its own modules; the calibration rows advance through each module once over all passes, and the
/// modules after a pass are loaded again by every later one (the price of the bound).
/// </summary>
public static class MeasurePasses
{
    /// <summary>
    /// Contiguous passes over the modules, each as long as its states fit <paramref name="budgetBytes"/> (a module whose
    /// states alone do not fit is a pass of its own). Modules that create no state join the pass before them; those
    /// before the first that does, the first pass. One pass when everything fits.
    /// </summary>
    /// <param name="statesPerModule">States created at each module (its measured units × candidate K).</param>
    public static IReadOnlyList<MeasurePass> Plan(IReadOnlyList<int> statesPerModule, long bytesPerState, long budgetBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerState);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budgetBytes);
        int lastWithStates = -1;
        for (int m = 0; m < statesPerModule.Count; m++)
        {
            if (statesPerModule[m] < 0)
                throw new ArgumentOutOfRangeException(nameof(statesPerModule), $"module {m} creates {statesPerModule[m]} states");
            if (statesPerModule[m] > 0)
                lastWithStates = m;
        }
        if (lastWithStates < 0)
            return [new MeasurePass(0, Math.Max(0, statesPerModule.Count - 1))];
        var passes = new List<MeasurePass>();
        int first = 0;
        long held = 0;
        for (int m = 0; m <= lastWithStates; m++)
        {
            long bytes = statesPerModule[m] * bytesPerState;
            if (held > 0 && bytes > 0 && held + bytes > budgetBytes)
            {
                passes.Add(new MeasurePass(first, m - 1));
                first = m;
                held = 0;
            }
            held += bytes;
        }
        passes.Add(new MeasurePass(first, statesPerModule.Count - 1));
        return passes;
    }

    /// <summary>The most state bytes any pass of <paramref name="passes"/> holds.</summary>
    public static long PeakBytes(IReadOnlyList<MeasurePass> passes, IReadOnlyList<int> statesPerModule, long bytesPerState) =>
        passes.Max(p => Enumerable.Range(p.First, p.Last - p.First + 1).Sum(m => (long)statesPerModule[m]) * bytesPerState);
}
