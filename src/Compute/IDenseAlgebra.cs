namespace Converter.Compute;

/// <summary>
/// The dense linear algebra of a conversion — the model's matrix products, Hessian sums, Cholesky, the LDLQ
/// feedback products — behind one interface so it runs on the CPU (<see cref="CpuDenseAlgebra"/>) or a GPU
/// (src/Cuda). All matrices are row-major float32 unless said otherwise.
/// </summary>
public interface IDenseAlgebra
{
    /// <summary>Where it runs, for logs ("cpu", "cuda:0").</summary>
    string Device { get; }

    /// <summary>y (m, n) = x (m, k) · Wᵀ + bias, W (n, k) — a linear layer. W's contents must not change while the caller holds it, so a GPU may keep a copy.</summary>
    void Linear(ReadOnlySpan<float> x, float[] weight, ReadOnlySpan<float> bias, Span<float> y, int m, int n, int k);

    /// <summary>y (m, n) = x (m, k) · Wᵀ for operands that may change between calls.</summary>
    void MultiplyTransposed(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int m, int n, int k);

    /// <summary>C (p, n) += A (p, m; row stride lda) · B (m, n).</summary>
    void MultiplyAdd(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, Span<float> c, int p, int m, int n);

    /// <summary>
    /// Cholesky of the symmetric positive definite a (n, n; float64): on success a's lower triangle holds L with
    /// a = L·Lᵀ and the strict upper triangle is zero; false (a then unspecified) when a is not positive definite.
    /// </summary>
    bool TryCholesky(Span<double> a, int n);

    /// <summary>
    /// The two traces of the proxy error (docs/exl3-format.md §3.7): tr(EᵀHE) with E = W − Q, and tr(WᵀHW), for W, Q (k, n)
    /// and H (k, k) symmetric. Each is summed per row in double, rows added in order (<see cref="QuadraticForms"/>).
    /// </summary>
    (double Error, double Weight) ProxyTraces(ReadOnlySpan<float> h, ReadOnlySpan<float> w, ReadOnlySpan<float> q, int k, int n);

    /// <summary>A running sum of XᵀX over row blocks X (rows, k), kept in float64.</summary>
    IGramAccumulator CreateGramAccumulator(int k);

    /// <summary>
    /// b ← A⁻¹·b for the symmetric positive definite A (n, n) and b (n, columns), both float64 row-major; a is
    /// overwritten (by its Cholesky factor, in a layout of the implementation's choosing). False, b then unspecified,
    /// when A is not positive definite. The host's: <see cref="TryCholesky"/>, then both substitutions.
    /// </summary>
    bool TrySolvePositiveDefinite(double[] a, double[] b, int n, int columns)
    {
        if (a.Length != (long)n * n || b.Length != (long)n * columns)
            throw new ArgumentException($"a solve of order {n} needs A of ({n}, {n}) and B of ({n}, {columns})");
        if (!TryCholesky(a, n))
            return false;
        CholeskySubstitution.SolveColumns(a, b, n, columns);
        return true;
    }

    /// <summary>
    /// The drift target's G = scale·A⁻¹·C (k × <see cref="ICrossAccumulator.Columns"/>; float32, row-major) for A the
    /// top-left k×k of a damped Hessian and C the sum in <paramref name="cross"/>, which is spent by it (a GPU solves in
    /// the sum's own memory). A is read from <paramref name="resident"/> where this algebra holds it, else from
    /// <paramref name="hostHessian"/> (paddedK², row-major). Null when A is not positive definite. The host's: A widened
    /// to float64, <see cref="TrySolvePositiveDefinite"/>, then the scale.
    /// </summary>
    float[]? TrySolveCross(ICrossAccumulator cross, IResidentMatrix? resident, Func<float[]> hostHessian, int k, int paddedK, double scale)
    {
        var h = hostHessian();
        if (h.Length != (long)paddedK * paddedK || paddedK < k || cross.Rows != k)
            throw new ArgumentException($"a Hessian of width {paddedK} ({h.Length} values) cannot serve inputs of {k} and a cross sum of {cross.Rows} rows");
        var a = new double[ArrayLength.Of(k, k, "drift solve")];
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
                a[i * k + j] = h[i * paddedK + j];
        }
        var b = cross.Sum();
        if (!TrySolvePositiveDefinite(a, b, k, cross.Columns))
            return null;
        var g = new float[b.Length];
        for (int i = 0; i < g.Length; i++)
            g[i] = (float)(scale * b[i]);
        return g;
    }

    /// <summary>
    /// <see cref="TrySolveCross"/>'s G of a square sum (C = Σ X̃ᵀ(X − X̃)) kept where it was solved, for <see cref="MultiplyTransposed(ReadOnlySpan{float}, IResidentMatrix, Span{float}, int, int)"/>:
    /// a GPU's memory (an 8B down_proj's G is 822 MB, which went down to the host and back up for each target), the
    /// host's otherwise. Null when A is not positive definite.
    /// </summary>
    IResidentMatrix? TrySolveCrossKept(ICrossAccumulator cross, IResidentMatrix? resident, Func<float[]> hostHessian, int k, int paddedK, double scale) =>
        TrySolveCross(cross, resident, hostHessian, k, paddedK, scale) is { } g ? new HostResidentMatrix(g, k) : null;

    /// <summary>
    /// <see cref="TrySolveCross"/>'s solve of a projected sum (k × columns: the group's members' steps) kept where it
    /// was solved, for a target made there (<c>LinearTarget.TryProjectedDriftTarget</c>): a GPU's memory (an 8B
    /// down_proj's 235 MB of steps came down, were added to W on the host and went up again inside its stage), the
    /// host's otherwise. Null when A is not positive definite.
    /// </summary>
    IResidentSteps? TrySolveCrossStepsKept(ICrossAccumulator cross, IResidentMatrix? resident, Func<float[]> hostHessian, int k, int paddedK, double scale) =>
        TrySolveCross(cross, resident, hostHessian, k, paddedK, scale) is { } steps ? new HostResidentSteps(steps, k, cross.Columns) : null;

    /// <summary>y (m, n) = x (m, k) · Wᵀ for a square W (n = k = <see cref="IResidentMatrix.Size"/>) read where it is kept.</summary>
    void MultiplyTransposed(ReadOnlySpan<float> x, IResidentMatrix w, Span<float> y, int m, int k)
    {
        if (w.Size != k)
            throw new ArgumentException($"a {w.Size}×{w.Size} matrix cannot multiply rows of {k}", nameof(w));
        MultiplyTransposed(x, HostResidentMatrix.HostValues(w), y, m, k, k);
    }

    /// <summary>
    /// The drift target T = W + W·Gᵀ for W (rows, k) and G kept by this algebra, made where G is: T transposed and
    /// zero-padded to (<paramref name="paddedK"/>, <paramref name="paddedN"/>) as the quantizer takes it, with
    /// Σ (T − W)² and Σ W² in double. Null where G is not this algebra's to read in place: the caller then forms T
    /// on the host (DriftCorrection). A GPU's saves the host an add, a transpose and two passes over W and T, each
    /// ~0.1 s on an 8B MLP linear's 59M weights, on the critical path of its sequential stage.
    /// </summary>
    (float[] Transposed, double MovedSquared, double NormSquared)? TryDriftTargetTransposed(ReadOnlySpan<float> w, IResidentMatrix g, int rows, int k,
        int paddedK, int paddedN) => null;

    /// <summary>A running sum of AᵀB over pairs of row blocks A, B (rows, k), kept in float64 (the drift target's cross sum).</summary>
    ICrossAccumulator CreateCrossAccumulator(int k) => CreateCrossAccumulator(k, k);

    /// <summary>
    /// A running sum of AᵀB over pairs of row blocks A (rows, k) and B (rows, <paramref name="columns"/>), kept in
    /// float64: the drift target's projected cross sum X̃ᵀ·(X − X̃)·Wᵀ (<c>DriftAccumulator</c>).
    /// </summary>
    ICrossAccumulator CreateCrossAccumulator(int k, int columns) => new HostCrossAccumulator(this, k, columns);
}

/// <summary>Σ AᵀB over the pairs of blocks added.</summary>
public interface ICrossAccumulator : IDisposable
{
    /// <summary>A's width: the sum's rows.</summary>
    int Rows { get; }

    /// <summary>B's width: the sum's columns.</summary>
    int Columns { get; }

    /// <summary>Adds AᵀB for A (rows, <see cref="Rows"/>) and B (rows, <see cref="Columns"/>), row-major, row t of both the same token.</summary>
    void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int rows);

    /// <summary>The sum so far (<see cref="Rows"/>, <see cref="Columns"/>), row-major: sum[i, j] = Σ_t a[t, i]·b[t, j].</summary>
    double[] Sum();
}

/// <summary>Σ XᵀX over the blocks added (the Hessian sum of docs/exl3-format.md §3.2).</summary>
public interface IGramAccumulator : IDisposable
{
    /// <summary>Adds XᵀX for X (rows, k), row-major.</summary>
    void Add(ReadOnlySpan<float> x, int rows);

    /// <summary>The sum so far (k, k), row-major.</summary>
    double[] Sum();

    /// <summary>
    /// The finalized mean: (float)(sum / count) in double, rounded once, in the top-left k×k of a row-major
    /// <paramref name="paddedK"/>² array (zeros elsewhere), and the diagonal of sum / count in double; what a Hessian's
    /// finalize reads (docs/exl3-format.md §3.2), computed where the sum lives so that its float64 k² never moves (an
    /// 8B down_proj's 1.6 GB copy and conversion took 1.5 s of every layer on an H200). The accumulator is spent after
    /// it: its memory is released, and it takes no more rows.
    /// </summary>
    GramMean Mean(double count, int paddedK);

    /// <summary>
    /// <see cref="Mean"/> left where the sum lives (a GPU's memory), for a device that will read it there; null, the
    /// accumulator not spent, where there is no such place (the CPU). A llama-3-70b down_proj's mean is 3.3 GB: its
    /// trip to the host and back cost 2.8 s at the start of every layer on an H200.
    /// </summary>
    ResidentGramMean? MeanInPlace(double count, int paddedK) => null;
}

/// <summary>
/// A square float32 matrix kept in the memory of the device that computed it: code of that device reads it there;
/// anything else asks for a host copy.
/// </summary>
public interface IResidentMatrix : IDisposable
{
    /// <summary>Rows, and columns.</summary>
    int Size { get; }

    /// <summary>Whether no value is NaN or ±Inf.</summary>
    bool AllFinite();

    /// <summary>m[i, i] += value for every i, one float addition each (as the host's <c>h[i·k + i] += value</c>).</summary>
    void AddToDiagonal(float value);

    /// <summary>The values, row-major, in a new host array.</summary>
    float[] ToHost();
}

/// <summary>
/// A projected drift solve's steps (<see cref="Rows"/> × <see cref="Columns"/> float32, row-major) kept in the memory of
/// the device that solved them: code of that device reads them there; anything else asks for the host's values.
/// </summary>
public interface IResidentSteps : IDisposable
{
    /// <summary>The group's input width k.</summary>
    int Rows { get; }

    /// <summary>The group's outputs: each member's steps are a block of its rows' columns.</summary>
    int Columns { get; }

    /// <summary>The values on the host: the array itself where they are held there, else a copy brought down.</summary>
    float[] HostValues();
}

/// <summary>A Gram sum's finalized mean left on its device (<see cref="IGramAccumulator.MeanInPlace"/>).</summary>
/// <param name="Values">(float)(sum / count), paddedK², zero past the sum's k: <see cref="GramMean.Values"/> where it was computed.</param>
/// <param name="Diagonal">sum[i, i] / count in double, i &lt; k.</param>
public sealed record ResidentGramMean(IResidentMatrix Values, double[] Diagonal);

/// <summary>A Gram sum's finalized mean (<see cref="IGramAccumulator.Mean"/>).</summary>
/// <param name="Values">(float)(sum / count), paddedK² row-major, zero past the sum's k.</param>
/// <param name="Diagonal">sum[i, i] / count in double, i &lt; k.</param>
public sealed record GramMean(float[] Values, double[] Diagonal);
