namespace Converter.Compute;

/// <summary>
/// tr(XᵀHX) for X (k, n) row-major and H (k, k) symmetric, on the host: the two traces of the proxy error
/// (docs/exl3-format.md §3.7). Per-row partial sums in double, added in row order, so the result does not depend on the
/// thread count.
/// </summary>
public static unsafe class QuadraticForms
{
    /// <summary>tr(EᵀHE) with E = W − Q, and tr(WᵀHW); H·X runs on <paramref name="algebra"/>, as one product in X's own layout.</summary>
    public static (double Error, double Weight) ProxyTraces(ReadOnlySpan<float> h, ReadOnlySpan<float> w, ReadOnlySpan<float> q, int k, int n, IDenseAlgebra algebra)
    {
        Check(h, w, q, k, n);
        var e = GC.AllocateUninitializedArray<float>(w.Length);
        System.Numerics.Tensors.TensorPrimitives.Subtract(w, q, e);
        return (Trace(e, h, k, n, algebra), Trace(w, h, k, n, algebra));
    }

    /// <summary>Throws unless H is (k, k) and W, Q are (k, n).</summary>
    public static void Check(ReadOnlySpan<float> h, ReadOnlySpan<float> w, ReadOnlySpan<float> q, int k, int n)
    {
        if (w.Length != (long)k * n || q.Length != w.Length || h.Length != (long)k * k)
            throw new ArgumentException($"proxy error operands do not match W ({k}, {n}) and H ({k}, {k})");
    }

    private static double Trace(ReadOnlySpan<float> x, ReadOnlySpan<float> h, int k, int n, IDenseAlgebra algebra)
    {
        var hx = new float[x.Length];
        algebra.MultiplyAdd(h, k, x, hx, k, k, n);
        var rows = new double[k];
        fixed (float* px = x)
        {
            nint address = (nint)px;
            Parallel.For(0, k, r =>
            {
                double sum = 0;
                float* xr = (float*)address + (long)r * n;
                for (int i = 0; i < n; i++)
                    sum += (double)xr[i] * hx[(long)r * n + i];
                rows[r] = sum;
            });
        }
        return SumInOrder(rows);
    }

    /// <summary>Row partial sums added in row order (every backend's last step).</summary>
    public static double SumInOrder(ReadOnlySpan<double> rows)
    {
        double total = 0;
        foreach (var s in rows)
            total += s;
        return total;
    }
}
