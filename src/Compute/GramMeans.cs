namespace Converter.Compute;

/// <summary>A Gram sum's mean as the host computes it (<see cref="IGramAccumulator.Mean"/>): the reference a device's must equal to the bit.</summary>
public static class GramMeans
{
    /// <param name="sum">Σ XᵀX, k×k row-major, symmetric.</param>
    public static GramMean Of(double[] sum, int k, double count, int paddedK)
    {
        if (sum.Length != (long)k * k || paddedK < k)
            throw new ArgumentException($"a {k}×{k} sum cannot be padded to {paddedK}");
        var values = new float[ArrayLength.Of(paddedK, paddedK, "Hessian")];
        var diagonal = new double[k];
        Parallel.For(0, k, i =>
        {
            var row = sum.AsSpan(i * k, k);
            var into = values.AsSpan(i * paddedK, k);
            for (int j = 0; j < k; j++)
                into[j] = (float)(row[j] / count);
            diagonal[i] = row[i] / count;
        });
        return new GramMean(values, diagonal);
    }
}
