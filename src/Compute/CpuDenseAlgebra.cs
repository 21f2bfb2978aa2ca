using System.Numerics.Tensors;
using MathNet.Numerics.LinearAlgebra;

namespace Converter.Compute;

/// <summary>The CPU implementation of <see cref="IDenseAlgebra"/>: our SIMD GEMM, MathNet's Cholesky.</summary>
public sealed class CpuDenseAlgebra : IDenseAlgebra
{
    /// <summary>Stateless, so one instance serves every caller.</summary>
    public static CpuDenseAlgebra Instance { get; } = new();

    public string Device => "cpu";

    public void Linear(ReadOnlySpan<float> x, float[] weight, ReadOnlySpan<float> bias, Span<float> y, int m, int n, int k) =>
        MatMul.MultiplyTransposed(x, weight, y, m, n, k, bias);

    public void MultiplyTransposed(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int m, int n, int k) =>
        MatMul.MultiplyTransposed(x, w, y, m, n, k);

    public void MultiplyAdd(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, Span<float> c, int p, int m, int n) =>
        RowMultiplyAdd.Run(a, lda, b, c, p, m, n);

    public bool TryCholesky(Span<double> a, int n)
    {
        var h = Matrix<double>.Build.DenseOfRowMajor(n, n, a.ToArray());
        Matrix<double> l;
        try
        {
            l = h.Cholesky().Factor;
        }
        catch (ArgumentException)
        {
            return false;
        }
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double v = j <= i ? l[i, j] : 0;
                if (!double.IsFinite(v))
                    return false;
                a[i * n + j] = v;
            }
        }
        return true;
    }

    public (double Error, double Weight) ProxyTraces(ReadOnlySpan<float> h, ReadOnlySpan<float> w, ReadOnlySpan<float> q, int k, int n) =>
        QuadraticForms.ProxyTraces(h, w, q, k, n, this);

    public IGramAccumulator CreateGramAccumulator(int k) => new CpuGramAccumulator(k);

    private sealed class CpuGramAccumulator(int k) : IGramAccumulator
    {
        private readonly double[] _sum = new double[ArrayLength.Of(k, k, "Hessian")];
        private float[] _transposed = [];
        private readonly float[] _product = new float[ArrayLength.Of(k, k, "Hessian")];

        public void Add(ReadOnlySpan<float> x, int rows)
        {
            if (_transposed.Length < x.Length)
                _transposed = new float[x.Length];
            // Xᵀ (k × rows): the GEMM computes a·bᵀ, so Xᵀ·(Xᵀ)ᵀ = XᵀX.
            for (int t = 0; t < rows; t++)
            {
                for (int i = 0; i < k; i++)
                    _transposed[i * rows + t] = x[t * k + i];
            }
            MatMul.MultiplyTransposed(_transposed.AsSpan(0, k * rows), _transposed.AsSpan(0, k * rows), _product, k, k, rows);
            // Sum batches in double so long calibration runs do not lose the small late contributions.
            for (int i = 0; i < _product.Length; i++)
                _sum[i] += _product[i];
        }

        public double[] Sum() => (double[])_sum.Clone();

        public GramMean Mean(double count, int paddedK) => GramMeans.Of(_sum, k, count, paddedK);

        public void Dispose()
        {
        }
    }
}
