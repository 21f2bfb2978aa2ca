namespace Converter.Compute;

/// <summary>
/// <see cref="ICrossAccumulator"/> on the host: each block's AᵀB by <paramref name="algebra"/>'s product of the
/// transposed blocks (its a·bᵀ of Aᵀ and Bᵀ), added to a float64 sum as the Hessian's chunks are.
/// </summary>
public sealed class HostCrossAccumulator(IDenseAlgebra algebra, int k, int columns) : ICrossAccumulator
{
    private readonly double[] _sum = new double[ArrayLength.Of(k, columns, "cross sum")];
    private float[] _aT = [], _bT = [], _product = [];

    public int Rows => k;

    public int Columns => columns;

    public void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int rows)
    {
        if (a.Length != (long)rows * k || b.Length != (long)rows * columns)
            throw new ArgumentException($"expected blocks of {rows}×{k} and {rows}×{columns}, got {a.Length} and {b.Length} values");
        if (rows == 0)
            return;
        if (_aT.Length < a.Length)
            _aT = new float[a.Length];
        if (_bT.Length < b.Length)
            _bT = new float[b.Length];
        BlockTranspose.Into(a, rows, k, k, _aT, rows);
        BlockTranspose.Into(b, rows, columns, columns, _bT, rows);
        if (_product.Length == 0)
            _product = new float[_sum.Length];
        algebra.MultiplyTransposed(_aT.AsSpan(0, k * rows), _bT.AsSpan(0, columns * rows), _product, k, columns, rows);
        for (int i = 0; i < _product.Length; i++)
            _sum[i] += _product[i];
    }

    public double[] Sum() => (double[])_sum.Clone();

    public void Dispose() { }
}
