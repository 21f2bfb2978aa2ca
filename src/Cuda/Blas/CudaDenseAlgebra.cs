using System.Numerics.Tensors;
using Converter.Compute;
using Converter.Cuda.Native;

namespace Converter.Cuda.Blas;

/// <summary>
/// <see cref="IDenseAlgebra"/> on a GPU: cuBLAS SGEMM (plain FP32, no TF32, so results track the CPU's to float
/// rounding) for the products and Gram sums, cuSOLVER's Dpotrf for Cholesky; only the GPU forward's activation
/// products and, when made with it, the Gram sums' products may ask for TF32 (<see cref="GpuMath"/>). Operands are copied in and results out per call, except the
/// weights of linear layers, which stay on the device while they are in use (a small LRU keyed by the weight array).
/// Calls are serialized on the default stream.
/// </summary>
public sealed unsafe class CudaDenseAlgebra : IDenseAlgebra, IDisposable
{
    /// <summary>Weights kept on the device by default: a dense block's seven linears and one more.</summary>
    public const int DefaultCachedWeights = 8;

    private readonly CudaContext _context;
    private readonly IntPtr _cublas;
    private readonly IntPtr _cusolver;
    private readonly Lock _gate = new();

    /// <summary>The GPU the products run on.</summary>
    internal CudaContext Context => _context;

    /// <summary>Held around every use of the cuBLAS handle and the scratch buffers; device code built on this algebra takes it too.</summary>
    internal Lock Gate => _gate;
    // The host arrays are held weakly: a strong reference kept the last 8 weights alive after their modules were
    // released (at an 8B's head, layer 1's seven reconstructions and then the head's weight and reconstruction,
    // 1-4 GiB of host memory until the process ended). An entry whose array has been collected is dropped.
    private readonly LinkedList<(WeakReference<float[]> Host, DeviceBuffer<float> Device)> _weights = new();
    private readonly Dictionary<string, DeviceBuffer<float>> _scratch = new();
    private long _weightCacheBytes = long.MaxValue;
    private bool _lean;
    private CudaModule? _denseKernels;

    /// <param name="gramMath">
    /// The arithmetic of the Gram sums' products (<c>--hessian-math</c>): FP32 (SSYRK on each stripe's diagonal block,
    /// SGEMM below it) or TF32 (one tensor-core GEMM per stripe, the whole square computed).
    /// </param>
    public CudaDenseAlgebra(CudaContext context, GpuMath gramMath = GpuMath.Fp32)
    {
        _context = context;
        GramMath = gramMath;
        context.MakeCurrent();
        try
        {
            Check(CudaMathLibraries.cublasCreate(out _cublas), "cublasCreate");
        }
        catch (DllNotFoundException)
        {
            throw new CudaException("cuBLAS (libcublas.so) was not found: install the CUDA toolkit or its nvidia-cublas wheel, or set TRELLIS_CUDA_LIB_DIR");
        }
        try
        {
            Check(CudaMathLibraries.cusolverDnCreate(out _cusolver), "cusolverDnCreate");
        }
        catch (DllNotFoundException)
        {
            throw new CudaException("cuSOLVER (libcusolver.so) was not found: install the CUDA toolkit or its nvidia-cusolver wheel, or set TRELLIS_CUDA_LIB_DIR");
        }
    }

    public string Device => $"cuda:{_context.Device.Ordinal}";

    public void Linear(ReadOnlySpan<float> x, float[] weight, ReadOnlySpan<float> bias, Span<float> y, int m, int n, int k)
    {
        int size = Check(x.Length, weight.Length, y.Length, m, n, k);
        lock (_gate)
        {
            var w = CachedWeight(weight);
            var dx = Scratch("x", x.Length);
            var dy = Scratch("y", size);
            dx.CopyFrom(x);
            LinearOnDevice(dx.Pointer, w.Pointer, dy.Pointer, m, n, k);
            dy.CopyTo(y[..size]);
        }
        if (!bias.IsEmpty)
        {
            for (int r = 0; r < m; r++)
                TensorPrimitives.Add(y.Slice(r * n, n), bias, y.Slice(r * n, n));
        }
    }

    public void MultiplyTransposed(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int m, int n, int k) =>
        MultiplyTransposed(x, w, y, m, n, k, ProductBlockValues);

    /// <summary>The product with blocks of at most <paramref name="blockValues"/> values (tests: blocks at small sizes).</summary>
    internal void MultiplyTransposed(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int m, int n, int k, long blockValues)
    {
        Check(x.Length, w.Length, y.Length, m, n, k);
        lock (_gate)
        {
            // A W larger than a block (a 70B's down_proj in a host-side cross projection) in its own buffer, as x and y.
            using var own = w.Length > blockValues ? _context.Allocate<float>(w.Length) : null;
            var dw = own ?? Scratch("w", w.Length);
            dw.CopyFrom(w);
            ProductThrough(x, y, dw.Pointer, m, n, k, blockValues);
        }
    }

    /// <summary>
    /// y (m, n) = x (m, k)·Wᵀ for a W on the device at <paramref name="w"/>; the caller holds the gate. A product whose
    /// x and y are at most <paramref name="blockValues"/> values each goes through the grow-only scratch; a larger one
    /// through own buffers, freed at once, in blocks of rows: as scratch, a 70B head's drift-target product (x and y
    /// 1.05G values each) stayed on the device for the rest of the run and took a 20 GB plan to 20.8 GiB (session 26).
    /// </summary>
    private void ProductThrough(ReadOnlySpan<float> x, Span<float> y, ulong w, int m, int n, int k, long blockValues)
    {
        int block = ProductBlockRows(m, Math.Max(k, n), blockValues);
        if (block == m)
        {
            var dx = Scratch("x", (long)m * k);
            var dy = Scratch("y", (long)m * n);
            dx.CopyFrom(x[..checked(m * k)]);
            LinearOnDevice(dx.Pointer, w, dy.Pointer, m, n, k);
            dy.CopyTo(y[..checked(m * n)]);
            return;
        }
        using var ownX = _context.Allocate<float>((long)block * k);
        using var ownY = _context.Allocate<float>((long)block * n);
        for (int r0 = 0; r0 < m; r0 += block)
        {
            int rows = Math.Min(block, m - r0);
            ownX.CopyFrom(x.Slice(checked(r0 * k), checked(rows * k)));
            LinearOnDevice(ownX.Pointer, w, ownY.Pointer, rows, n, k);
            ownY.CopyTo(y.Slice(checked(r0 * n), checked(rows * n)));
        }
    }

    public void MultiplyAdd(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, Span<float> c, int p, int m, int n)
    {
        if (p == 0 || m == 0 || n == 0)
            return;
        // In 64 bits: a head's H·X has k·n = 4096 × 128256 values, and a product of two ints would wrap past 2^31.
        long aLength = (long)(p - 1) * lda + m, bLength = (long)m * n, cLength = (long)p * n;
        if (a.Length < aLength || b.Length < bLength || c.Length < cLength)
            throw new ArgumentException("feedback product operands are too small for their shapes");
        lock (_gate)
        {
            var da = Scratch("a", aLength);
            var db = Scratch("b", bLength);
            var dc = Scratch("c", cLength);
            da.CopyFrom(a[..(int)aLength]);
            db.CopyFrom(b[..(int)bLength]);
            dc.CopyFrom(c[..(int)cLength]);
            // Row-major C += A·B is column-major Cᵀ (n×p) += Bᵀ (n×m) · Aᵀ (m×p).
            Sgemm(CudaMathLibraries.OpN, CudaMathLibraries.OpN, n, p, m, db.Pointer, n, da.Pointer, lda, 1f, dc.Pointer, n);
            dc.CopyTo(c[..(int)cLength]);
        }
    }

    /// <summary>
    /// Values of W, Q and H·(W or Q) on the device at once for the proxy traces in a lean run (<see cref="RunLean"/>),
    /// at most: a wider matrix goes in column stripes, each traced alone and its row sums added in stripe order. A 70B's
    /// head (8192 × 128256) whole is 12.6 GB of device memory. A run that is not lean traces every matrix whole (the
    /// strided copies of stripes cost time, and an 8B head whole is 6.3 GB).
    /// </summary>
    public const long LeanProxyStripeValues = 1L << 26;

    /// <summary>Columns per stripe of the proxy traces: all n, or in a lean run as many as keep k·width within <see cref="LeanProxyStripeValues"/>.</summary>
    public static int ProxyStripeWidth(int k, int n, bool lean) =>
        !lean || (long)k * n <= LeanProxyStripeValues ? n : (int)Math.Max(1, LeanProxyStripeValues / k);

    /// <summary>
    /// H goes up once, W and Q once (per stripe); H·W and H·E run as two SGEMMs into one product buffer, E replaces Q on the device, and
    /// only 2k row sums come back (the host version moves k·n floats five times: a llama-3-8b head's proxy took 9.7 s).
    /// </summary>
    public (double Error, double Weight) ProxyTraces(ReadOnlySpan<float> h, ReadOnlySpan<float> w, ReadOnlySpan<float> q, int k, int n) =>
        ProxyTraces(h, w, q, k, n, ProxyStripeWidth(k, n, _lean));

    /// <summary>The traces in column stripes of <paramref name="stripe"/> (tests: stripes at a small n).</summary>
    internal (double Error, double Weight) ProxyTraces(ReadOnlySpan<float> h, ReadOnlySpan<float> w, ReadOnlySpan<float> q, int k, int n, int stripe)
    {
        QuadraticForms.Check(h, w, q, k, n);
        lock (_gate)
        {
            using var dh = _context.Allocate<float>((long)k * k);
            dh.CopyFrom(h);
            return TracesWith(dh.Pointer, w, q, k, n, stripe);
        }
    }

    /// <summary>The traces with an H already on this device (k×k, row-major, symmetric), which stays there.</summary>
    internal (double Error, double Weight) ProxyTraces(DeviceBuffer<float> h, ReadOnlySpan<float> w, ReadOnlySpan<float> q, int k, int n)
    {
        if (h.Count != (long)k * k || w.Length != (long)k * n || q.Length != w.Length)
            throw new ArgumentException($"proxy error operands do not match W ({k}, {n}) and H ({k}, {k})");
        lock (_gate)
            return TracesWith(h.Pointer, w, q, k, n, ProxyStripeWidth(k, n, _lean));
    }

    /// <summary>
    /// The traces with H, W and Q all on this device, read in place except that W is overwritten with E = W − Q (Q is
    /// kept, for the reconstruction made where it is held); one product buffer (k·n floats) is allocated beside them.
    /// </summary>
    internal (double Error, double Weight) ProxyTracesInPlace(DeviceBuffer<float> h, DeviceBuffer<float> w, DeviceBuffer<float> q, int k, int n)
    {
        if (h.Count != (long)k * k || w.Count != (long)k * n || q.Count != w.Count)
            throw new ArgumentException($"proxy error operands do not match W ({k}, {n}) and H ({k}, {k})");
        lock (_gate)
        {
            using var product = _context.Allocate<float>((long)k * n);
            using var rows = _context.Allocate<double>(2L * k);
            var sums = new double[2 * k];
            StripeTraces(h.Pointer, w.Pointer, q.Pointer, product.Pointer, rows.Pointer, k, n);
            rows.CopyTo(sums);
            return (QuadraticForms.SumInOrder(sums.AsSpan(0, k)), QuadraticForms.SumInOrder(sums.AsSpan(k)));
        }
    }

    /// <summary>The traces with H at <paramref name="h"/> on the device; the caller holds the gate.</summary>
    private (double Error, double Weight) TracesWith(ulong h, ReadOnlySpan<float> w, ReadOnlySpan<float> q, int k, int n, int stripe)
    {
        stripe = Math.Clamp(stripe, 1, n);
        long size = (long)k * stripe;
        var totals = new double[2 * k];
        var sums = new double[2 * k];
        using var dw = _context.Allocate<float>(size);
        using var dq = _context.Allocate<float>(size);
        using var product = _context.Allocate<float>(size);
        using var rows = _context.Allocate<double>(2L * k);
        for (int c0 = 0; c0 < n; c0 += stripe)
        {
            int width = Math.Min(stripe, n - c0);
            if (width == n)
            {
                dw.CopyFrom(w);
                dq.CopyFrom(q);
            }
            else
            {
                dw.CopyColumnsFrom(w, n, k, c0, width);
                dq.CopyColumnsFrom(q, n, k, c0, width);
            }
            StripeTraces(h, dw.Pointer, dq.Pointer, product.Pointer, rows.Pointer, k, width);
            rows.CopyTo(sums);
            for (int i = 0; i < totals.Length; i++)
                totals[i] += sums[i];
        }
        return (QuadraticForms.SumInOrder(totals.AsSpan(0, k)), QuadraticForms.SumInOrder(totals.AsSpan(k)));
    }

    /// <summary>
    /// One stripe's row sums, (E ⊙ H·E) into rows[0, k) and (W ⊙ H·W) into rows[k, 2k), for W and Q (k × width) on the
    /// device; W is overwritten with E, Q kept. The caller holds the gate.
    /// </summary>
    private void StripeTraces(ulong h, ulong w, ulong q, ulong product, ulong rows, int k, int width)
    {
        long values = (long)k * width;
        // Row sums of X ⊙ (H·X) into k doubles at rowSums; row-major H·X (k, width) is column-major Xᵀ·H (width×k), H symmetric.
        void RowTraces(ulong x, ulong rowSums)
        {
            Sgemm(CudaMathLibraries.OpN, CudaMathLibraries.OpN, width, k, k, x, width, h, k, 0f, product, width);
            CudaKernels.RowDots.Launch(DenseKernels, (uint)k, 256, 0, (x, product, width, rowSums));
        }
        // W's trace first, then E = W − Q in W's memory: Q is left as it was (a held target's Q is reconstructed after).
        RowTraces(w, rows + (ulong)k * sizeof(double));
        CudaKernels.SubtractInPlace.Launch(DenseKernels, ElementGrid(values), 256, 0, (w, q, values));
        RowTraces(w, rows);
    }

    public bool TryCholesky(Span<double> a, int n)
    {
        if (a.Length != n * n)
            throw new ArgumentException("Cholesky needs an n×n matrix", nameof(a));
        lock (_gate)
        {
            using var da = _context.Allocate<double>((long)n * n);
            da.CopyFrom(a);
            if (!TryCholeskyOnDevice(da.Pointer, n))
                return false;
            da.CopyTo(a);
        }
        return ClearUpperAndCheck(a, n);
    }

    /// <summary>
    /// A symmetric positive definite solve on the device: cuSOLVER's Dpotrf, then two cuBLAS Dtrsm. Row-major b (n, columns) is
    /// column-major bᵀ (columns, n), and A⁻¹·b = (bᵀ·A⁻¹)ᵀ with A⁻¹ = U⁻¹·U⁻ᵀ for the column-major upper factor U
    /// (A = UᵀU): solving from the right by U, then by Uᵀ, leaves A⁻¹·b in b's row-major layout with no transposes.
    /// a comes back holding nothing useful (the factor is left on the device).
    /// </summary>
    public bool TrySolvePositiveDefinite(double[] a, double[] b, int n, int columns)
    {
        if (a.Length != (long)n * n || b.Length != (long)n * columns)
            throw new ArgumentException($"a solve of order {n} needs A of ({n}, {n}) and B of ({n}, {columns})");
        lock (_gate)
        {
            using var da = _context.Allocate<double>((long)n * n);
            da.CopyFrom(a);
            using var db = _context.Allocate<double>((long)n * columns);
            db.CopyFrom(b);
            if (!TrySolveOnDevice(da.Pointer, db.Pointer, n, columns, 1))
                return false;
            db.CopyTo(b);
        }
        return true;
    }

    /// <summary>
    /// <see cref="IDenseAlgebra.TrySolveCross"/> where the operands are: the Hessian widened from its resident copy on
    /// this device (else uploaded once, as float), the cross sum solved in its own device memory (else uploaded), the
    /// scale folded into the first Dtrsm; only G comes down, as float. An 8B down_proj's 14336² solve spent 4.5 s in
    /// float64 copies and host loops around the device's factor and substitutions.
    /// </summary>
    public float[]? TrySolveCross(ICrossAccumulator cross, IResidentMatrix? resident, Func<float[]> hostHessian, int k, int paddedK, double scale)
    {
        using var g = SolveCrossOnDevice(cross, resident, hostHessian, k, paddedK, scale);
        if (g is null)
            return null;
        var result = new float[ArrayLength.Of(k, cross.Columns, "drift solve")];
        lock (_gate)
            g.CopyTo(result);
        return result;
    }

    /// <summary>
    /// G solved as <see cref="TrySolveCross"/> does and left on this device; a lean run (whose device budget does not
    /// count a k² float beside the group's linears: a 70B down_proj's is 3.3 GB) keeps it on the host.
    /// </summary>
    public IResidentMatrix? TrySolveCrossKept(ICrossAccumulator cross, IResidentMatrix? resident, Func<float[]> hostHessian, int k, int paddedK, double scale)
    {
        if (cross.Rows != k || cross.Columns != k)
            throw new ArgumentException($"a kept G is square: the cross sum is {cross.Rows}×{cross.Columns}, the inputs {k} wide", nameof(cross));
        if (IsLean)
            return TrySolveCross(cross, resident, hostHessian, k, paddedK, scale) is { } host ? new HostResidentMatrix(host, k) : null;
        var g = SolveCrossOnDevice(cross, resident, hostHessian, k, paddedK, scale);
        return g is null ? null : new CudaResidentMatrix(this, g, k);
    }

    /// <summary>
    /// The steps solved as <see cref="TrySolveCross"/> does and left on this device (<see cref="TryProjectedDriftTargetInto"/>
    /// reads them there); a lean run keeps them on the host, as it does G (<see cref="TrySolveCrossKept"/>).
    /// </summary>
    public IResidentSteps? TrySolveCrossStepsKept(ICrossAccumulator cross, IResidentMatrix? resident, Func<float[]> hostHessian, int k, int paddedK, double scale)
    {
        if (IsLean)
            return TrySolveCross(cross, resident, hostHessian, k, paddedK, scale) is { } host ? new HostResidentSteps(host, k, cross.Columns) : null;
        var steps = SolveCrossOnDevice(cross, resident, hostHessian, k, paddedK, scale);
        return steps is null ? null : new CudaResidentSteps(this, steps, k, cross.Columns);
    }

    /// <summary>y (m, k) = x (m, k) · Wᵀ with W read on this device when it is kept here; else as the interface's default.</summary>
    public void MultiplyTransposed(ReadOnlySpan<float> x, IResidentMatrix w, Span<float> y, int m, int k) =>
        MultiplyTransposed(x, w, y, m, k, ProductBlockValues);

    /// <summary>The product in blocks of at most <paramref name="blockValues"/> values of x (tests: blocks at small sizes).</summary>
    internal void MultiplyTransposed(ReadOnlySpan<float> x, IResidentMatrix w, Span<float> y, int m, int k, long blockValues)
    {
        if (w is not CudaResidentMatrix mine || !ReferenceEquals(mine.Algebra, this))
        {
            // A G kept on the host (a lean plan's) goes up beside x: the same blocks.
            MultiplyTransposed(x, HostResidentMatrix.HostValues(w), y, m, k, k, blockValues);
            return;
        }
        if (w.Size != k)
            throw new ArgumentException($"a {w.Size}×{w.Size} matrix cannot multiply rows of {k}", nameof(w));
        if (x.Length != (long)m * k || y.Length < (long)m * k)
            throw new ArgumentException("matrix product operands do not match their shapes");
        lock (_gate)
            ProductThrough(x, y, mine.Values.Pointer, m, k, k, blockValues);
    }

    /// <summary>
    /// Values of x (and of y) a product of host operands takes up at once through the grow-only scratch; larger ones
    /// go in blocks of rows of this size through buffers of their own (<see cref="ProductThrough"/>): 256 MB, above any
    /// 8B linear but its head, below a 70B's MLP linears (235M values).
    /// </summary>
    public const long ProductBlockValues = 1L << 26;

    /// <summary>Rows of x per block when rows are <paramref name="width"/> values (the wider of x and y): all <paramref name="m"/> when they fit one.</summary>
    public static int ProductBlockRows(int m, int width, long blockValues = ProductBlockValues) =>
        (long)m * width <= blockValues ? m : (int)Math.Max(1, blockValues / width);

    /// <summary>
    /// <see cref="IDenseAlgebra.TryDriftTargetTransposed"/> on this device: W up, D = W·Gᵀ by the product
    /// <see cref="MultiplyTransposed(ReadOnlySpan{float}, IResidentMatrix, Span{float}, int, int)"/> makes, then T = W + D
    /// transposed and padded, and the per-row sums, by two kernels; only T and 2 doubles a row come down. Null where G
    /// is not on this device.
    /// </summary>
    public (float[] Transposed, double MovedSquared, double NormSquared)? TryDriftTargetTransposed(ReadOnlySpan<float> w, IResidentMatrix g, int rows, int k,
        int paddedK, int paddedN)
    {
        if (g is not CudaResidentMatrix mine || !ReferenceEquals(mine.Algebra, this))
            return null;
        // Not zeroed on the host: the kernel writes every value, padding included.
        var transposed = Regularize.Quantization.WeightArrays.Uninitialized(ArrayLength.Of(paddedK, paddedN, "drift target"));
        // Its own buffer, freed at once: a scratch would keep the largest linear's padded size on the device for the run.
        using var dt = _context.Allocate<float>((long)paddedK * paddedN);
        var (moved, norm) = DriftTargetOnDevice(w, mine, rows, k, paddedK, paddedN, dt, transposed);
        return (transposed, moved, norm);
    }

    /// <summary>
    /// <see cref="TryDriftTargetTransposed"/> into <paramref name="destination"/> (paddedK × paddedN on this device,
    /// a held target's W), which it stays in: only the 2 doubles a row come down. Null where G is not on this device.
    /// </summary>
    internal (double MovedSquared, double NormSquared)? TryDriftTargetInto(ReadOnlySpan<float> w, IResidentMatrix g, int rows, int k, int paddedK, int paddedN,
        DeviceBuffer<float> destination)
    {
        if (g is not CudaResidentMatrix mine || !ReferenceEquals(mine.Algebra, this))
            return null;
        CheckDestination(destination, paddedK, paddedN);
        return DriftTargetOnDevice(w, mine, rows, k, paddedK, paddedN, destination, null);
    }

    /// <summary>
    /// A projected group's drift target made on this device into <paramref name="destination"/> (paddedK × paddedN, a
    /// held target's W), which it stays in: W (rows × k) up, then Tᵀ = Wᵀ + the member's block of the steps (at column
    /// <paramref name="offset"/>) by one kernel (<c>projected_target_transposed</c>, the host's sums to the bit); only 2
    /// doubles per 32×32 tile come down, added here in tile order. Null where the steps are not on this device.
    /// </summary>
    internal (double MovedSquared, double NormSquared)? TryProjectedDriftTargetInto(ReadOnlySpan<float> w, IResidentSteps steps, int offset, int rows, int k,
        int paddedK, int paddedN, DeviceBuffer<float> destination)
    {
        if (steps is not CudaResidentSteps mine || !ReferenceEquals(mine.Algebra, this))
            return null;
        if (steps.Rows != k || offset < 0 || offset + rows > steps.Columns)
            throw new ArgumentException($"{rows} rows at column {offset} are not a member's block of {steps.Rows}×{steps.Columns} steps for inputs of {k}");
        CheckPadding(w, rows, k, paddedK, paddedN);
        CheckDestination(destination, paddedK, paddedN);
        long tiles = TargetTiles(paddedK, paddedN);
        var sums = new double[2 * tiles];
        lock (_gate)
        {
            // Its own buffer, freed at once (see MultiplyTransposed).
            using var dw = _context.Allocate<float>(w.Length);
            using var tileSums = _context.Allocate<double>(sums.Length);
            dw.CopyFrom(w);
            CudaKernels.ProjectedTargetTransposed.Launch(DenseKernels, (uint)Math.Min(65535, tiles), 256, 0,
                (dw.Pointer, rows, k, mine.Values.Pointer, steps.Columns, offset, destination.Pointer, paddedK, paddedN, tileSums.Pointer));
            tileSums.CopyTo(sums);
        }
        return SumPairs(sums);
    }

    /// <summary>
    /// W up, D = W·Gᵀ, T = W + D transposed and padded into <paramref name="dt"/> and each row's Σ (T − W)² and Σ W²;
    /// T comes down into <paramref name="download"/> when given.
    /// </summary>
    private (double MovedSquared, double NormSquared) DriftTargetOnDevice(ReadOnlySpan<float> w, CudaResidentMatrix g, int rows, int k, int paddedK, int paddedN,
        DeviceBuffer<float> dt, float[]? download)
    {
        if (g.Size != k)
            throw new ArgumentException($"a {g.Size}×{g.Size} matrix cannot multiply rows of {k}", nameof(g));
        CheckPadding(w, rows, k, paddedK, paddedN);
        var sums = new double[2L * rows];
        lock (_gate)
        {
            // Own buffers, freed at once (see MultiplyTransposed): as scratch, a 70B MLP linear's W and D stayed on the device for the run.
            using var dw = _context.Allocate<float>(w.Length);
            using var dd = _context.Allocate<float>(w.Length);
            using var rowSums = _context.Allocate<double>(sums.Length);
            dw.CopyFrom(w);
            LinearOnDevice(dw.Pointer, g.Values.Pointer, dd.Pointer, rows, k, k);
            long tiles = TargetTiles(paddedK, paddedN);
            CudaKernels.DriftTargetTransposed.Launch(DenseKernels, (uint)Math.Min(65535, tiles), 256, 0, (dw.Pointer, dd.Pointer, rows, k, dt.Pointer, paddedK, paddedN));
            CudaKernels.DriftShiftRows.Launch(DenseKernels, (uint)rows, 256, 0, (dw.Pointer, dd.Pointer, k, rowSums.Pointer));
            if (download is not null)
                dt.CopyTo(download);
            rowSums.CopyTo(sums);
        }
        return SumPairs(sums);
    }

    /// <summary>The 32 × 32 tiles of a padded target (TARGET_TILE in Kernels/dense.cu), one block's work in its drift kernels.</summary>
    private static long TargetTiles(int paddedK, int paddedN) => (long)((paddedK + 31) / 32) * ((paddedN + 31) / 32);

    private static void CheckPadding(ReadOnlySpan<float> w, int rows, int k, int paddedK, int paddedN)
    {
        if (w.Length != (long)rows * k || paddedK < k || paddedN < rows)
            throw new ArgumentException($"a {rows}×{k} weight ({w.Length} values) cannot pad to {paddedK}×{paddedN}");
    }

    private static void CheckDestination(DeviceBuffer<float> destination, int paddedK, int paddedN)
    {
        if (destination.Count != (long)paddedK * paddedN)
            throw new ArgumentException($"the destination has {destination.Count} values, not {paddedK}×{paddedN}", nameof(destination));
    }

    /// <summary>The (moved, norm) pairs a drift target's kernel wrote, each added in order: the same total whatever the grid.</summary>
    private static (double MovedSquared, double NormSquared) SumPairs(double[] sums)
    {
        double moved = 0, norm = 0;
        for (long i = 0; i < sums.Length; i += 2)
        {
            moved += sums[i];
            norm += sums[i + 1];
        }
        return (moved, norm);
    }

    /// <summary>G = scale·A⁻¹·C in a new device buffer (k × C's columns, float), or null when A is not positive definite.</summary>
    private DeviceBuffer<float>? SolveCrossOnDevice(ICrossAccumulator cross, IResidentMatrix? resident, Func<float[]> hostHessian, int k, int paddedK, double scale)
    {
        if (paddedK < k || cross.Rows != k)
            throw new ArgumentException($"a Hessian of width {paddedK} cannot serve inputs of {k} and a cross sum of {cross.Rows} rows");
        var here = resident is CudaResidentMatrix r && ReferenceEquals(r.Algebra, this) && r.Size == paddedK ? r : null;
        // Host copies are made outside the gate: another device's resident H comes down under that device's lock.
        var hostH = here is null ? hostHessian() : null;
        if (hostH is not null && hostH.Length != (long)paddedK * paddedK)
            throw new ArgumentException($"a Hessian of width {paddedK} needs {(long)paddedK * paddedK} values, got {hostH.Length}");
        var mine = cross is CudaCrossAccumulator c && ReferenceEquals(c.Owner, this) ? c : null;
        var hostSum = mine is null ? cross.Sum() : null;
        lock (_gate)
        {
            long values = (long)k * k;
            using var a = _context.Allocate<double>(values);
            if (here is not null)
            {
                CudaKernels.WidenTopLeft.Launch(DenseKernels, ElementGrid(values), 256, 0, (here.Values.Pointer, paddedK, a.Pointer, k));
            }
            else
            {
                using var h = _context.Allocate<float>((long)paddedK * paddedK);
                h.CopyFrom(hostH!);
                CudaKernels.WidenTopLeft.Launch(DenseKernels, ElementGrid(values), 256, 0, (h.Pointer, paddedK, a.Pointer, k));
            }
            long solved = (long)k * cross.Columns;
            using var b = mine is not null ? mine.TakeSum() : _context.Allocate<double>(solved);
            if (hostSum is not null)
                b.CopyFrom(hostSum);
            if (!TrySolveOnDevice(a.Pointer, b.Pointer, k, cross.Columns, scale))
                return null;
            var g = _context.Allocate<float>(solved);
            CudaKernels.Narrow.Launch(DenseKernels, ElementGrid(solved), 256, 0, (b.Pointer, g.Pointer, solved));
            return g;
        }
    }

    /// <summary>b ← alpha·A⁻¹·b on the device for A (n, n) at <paramref name="a"/>, which keeps its factor; false when A is not positive definite. The caller holds the gate.</summary>
    private bool TrySolveOnDevice(ulong a, ulong b, int n, int columns, double alpha)
    {
        if (!TryCholeskyOnDevice(a, n))
            return false;
        double one = 1;
        _context.MakeCurrent();
        Check(CudaMathLibraries.cublasDtrsm(_cublas, CudaMathLibraries.SideRight, CudaMathLibraries.FillUpper, CudaMathLibraries.OpN, CudaMathLibraries.DiagNonUnit,
            columns, n, &alpha, a, n, b, columns), "cublasDtrsm");
        Check(CudaMathLibraries.cublasDtrsm(_cublas, CudaMathLibraries.SideRight, CudaMathLibraries.FillUpper, CudaMathLibraries.OpT, CudaMathLibraries.DiagNonUnit,
            columns, n, &one, a, n, b, columns), "cublasDtrsm");
        return true;
    }

    public ICrossAccumulator CreateCrossAccumulator(int k) => CreateCrossAccumulator(k, k);

    public ICrossAccumulator CreateCrossAccumulator(int k, int columns) => new CudaCrossAccumulator(this, k, columns, CrossStripeRows(k, columns));

    /// <summary>A cross accumulator whose product goes in stripes of <paramref name="stripe"/> of the sum's rows (tests: stripes at a small k).</summary>
    internal ICrossAccumulator CreateCrossAccumulator(int k, int columns, int stripe) => new CudaCrossAccumulator(this, k, columns, Math.Clamp(stripe, 1, k));

    /// <summary>
    /// The sum's rows per product stripe (columns × rows floats): as a Gram sum's stripes where the sum is square, else
    /// all k when k × columns fits <see cref="CudaGramAccumulator.ProductValues"/>, or the most that fit, a multiple of 128.
    /// </summary>
    internal static int CrossStripeRows(int k, int columns) =>
        columns == k ? CudaGramAccumulator.StripeWidth(k)
        : (long)k * columns <= CudaGramAccumulator.ProductValues ? k : (int)Math.Clamp(CudaGramAccumulator.ProductValues / columns / 128 * 128, 128, k);

    /// <summary>Device bytes of a cross accumulator of k × columns: the float64 sum and the product stripe.</summary>
    public static long CrossBytes(int k, int columns) => 8L * k * columns + 4L * columns * CrossStripeRows(k, columns);

    /// <summary>A device copy of rows (rows×cols float, row-major) at <paramref name="pointer"/>; the caller holds <see cref="Gate"/>.</summary>
    internal IResidentRows KeepRows(ulong pointer, int rows, int cols)
    {
        var buffer = _context.Allocate<float>((long)rows * cols);
        _context.CopyWithin(buffer.Pointer, pointer, buffer.Bytes);
        return new CudaResidentRows(this, buffer, rows, cols);
    }

    /// <summary>
    /// Adds X̃ᵀ(X − X̃) to <paramref name="cross"/> for the quantized stream's rows X̃ at <paramref name="quantized"/> and
    /// the original stream's X held by <paramref name="original"/> (rows×k each), all on this device: the difference in a
    /// scratch buffer (subtract_from), whether it is non-zero anywhere (flag_nonzero), then the striped product. Returns
    /// whether the streams differed; null (nothing added) when the sum or the rows are not this algebra's. The product
    /// is in the forward's <paramref name="math"/>: C only moves the target (T = W + α·W·(H⁻¹C)ᵀ, a few percent of W), so
    /// TF32's 1e-3 relative rounding of its operands changes T by ~1e-5 of W, while FP32 made an 8B down_proj's
    /// 14336² product over 250 × 2048 tokens about 3 s of every layer's capture. The caller holds <see cref="Gate"/>.
    /// </summary>
    internal bool? TryAddCrossOnDevice(ICrossAccumulator cross, ulong quantized, IResidentRows original, int rows, GpuMath math = GpuMath.Fp32) =>
        TryAddCrossOnDevice(cross, quantized, original, rows, null, math);

    /// <summary>
    /// As <see cref="TryAddCrossOnDevice(ICrossAccumulator, ulong, IResidentRows, int, GpuMath)"/>, and with a
    /// <paramref name="projection"/> the projected sum X̃ᵀ·((X − X̃)·Wᵀ): each member's product with the difference (its
    /// weight from this device's cache, where the forward's product of the same rows reads it next) into its block of
    /// a scratch Z, then X̃ᵀZ.
    /// </summary>
    internal bool? TryAddCrossOnDevice(ICrossAccumulator cross, ulong quantized, IResidentRows original, int rows, CrossProjection? projection, GpuMath math)
    {
        if (cross is not CudaCrossAccumulator mine || !ReferenceEquals(mine.Owner, this) || original is not CudaResidentRows held || !ReferenceEquals(held.Owner, this))
            return null;
        if (held.Rows != rows)
            throw new ArgumentException($"the original stream's {held.Rows} rows do not pair with the quantized stream's {rows}", nameof(original));
        long values = (long)rows * held.Cols;
        var difference = Scratch("cross difference", values);
        _context.CopyWithin(difference.Pointer, quantized, 4 * values);
        CudaKernels.SubtractFrom.Launch(DenseKernels, ElementGrid(values), 256, 0, (held.Pointer, difference.Pointer, values));
        var flag = Scratch("cross flag", 1);
        flag.Fill(0);
        CudaKernels.FlagNonzero.Launch(DenseKernels, ElementGrid(values), 256, 0, (difference.Pointer, values, flag.Pointer));
        Span<float> differed = stackalloc float[1];
        flag.CopyTo(differed);
        if (differed[0] == 0)
            return false;
        if (projection is null)
        {
            mine.AddOnDevice(quantized, difference.Pointer, rows, math);
            return true;
        }
        if (projection.Features != held.Cols || mine.Columns != projection.Columns)
            throw new ArgumentException($"a projection of {projection.Features} inputs to {projection.Columns} columns does not fit rows of {held.Cols} and a sum of {mine.Columns} columns");
        int columns = projection.Columns;
        var z = Scratch("cross projected", (long)rows * columns);
        for (int m = 0; m < projection.Weights.Count; m++)
        {
            var w = CachedWeight(projection.Weights[m]);
            // Row-major Z's block = D·W_mᵀ is column-major (rows_m × rows) W_m·Dᵀ at column offset, leading dimension Σ rows.
            Gemm(CudaMathLibraries.OpT, CudaMathLibraries.OpN, projection.RowsOf(m), rows, held.Cols, w.Pointer, held.Cols, difference.Pointer, held.Cols,
                z.Pointer + 4UL * (ulong)projection.OffsetOf(m), columns, math);
        }
        mine.AddOnDevice(quantized, z.Pointer, rows, math);
        return true;
    }

    /// <summary>Rows kept on the device by <see cref="KeepRows"/>.</summary>
    private sealed class CudaResidentRows(CudaDenseAlgebra owner, DeviceBuffer<float> buffer, int rows, int cols) : IResidentRows
    {
        private DeviceBuffer<float>? _buffer = buffer;

        public CudaDenseAlgebra Owner => owner;
        public int Rows => rows;
        public int Cols => cols;
        public ulong Pointer => (_buffer ?? throw new ObjectDisposedException(nameof(CudaResidentRows))).Pointer;

        public float[] ToHost()
        {
            var values = new float[(long)rows * cols];
            lock (owner._gate)
                (_buffer ?? throw new ObjectDisposedException(nameof(CudaResidentRows))).CopyTo(values);
            return values;
        }

        public void Dispose()
        {
            lock (owner._gate)
            {
                _buffer?.Dispose();
                _buffer = null;
            }
        }
    }

    /// <summary>A zeroed float64 k×k sum and the float32 product stripe (k × stripe) its blocks pass through.</summary>
    private (DeviceBuffer<double> Sum, DeviceBuffer<float> Product) AllocateStripedSum(int k, int stripe)
    {
        var sum = _context.Allocate<double>((long)k * k);
        sum.Fill(0);
        return (sum, _context.Allocate<float>((long)k * stripe));
    }

    /// <summary>
    /// Σ AᵀB in float64 on the device: each pair of blocks goes up once, their product by SGEMM in stripes of the sum's
    /// rows of at most <see cref="CudaGramAccumulator.ProductValues"/> values (as the Gram sums), each stripe added to the
    /// sum whole. Only the sum ever comes down, once.
    /// </summary>
    private sealed class CudaCrossAccumulator : ICrossAccumulator
    {
        private readonly CudaDenseAlgebra _owner;
        private readonly int _k;
        private readonly int _columns;
        private readonly int _stripe;
        private DeviceBuffer<double>? _sum;
        private readonly DeviceBuffer<float> _product;

        public CudaCrossAccumulator(CudaDenseAlgebra owner, int k, int columns, int stripe)
        {
            _owner = owner;
            _k = k;
            _columns = columns;
            _stripe = stripe;
            _sum = owner._context.Allocate<double>((long)k * columns);
            _sum.Fill(0);
            _product = owner._context.Allocate<float>((long)columns * stripe);
        }

        public int Rows => _k;

        public int Columns => _columns;

        public void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int rows)
        {
            ObjectDisposedException.ThrowIf(_sum is null, this);
            if (a.Length != (long)rows * _k || b.Length != (long)rows * _columns)
                throw new ArgumentException($"expected blocks of {rows}×{_k} and {rows}×{_columns}, got {a.Length} and {b.Length} values");
            if (rows == 0)
                return;
            lock (_owner._gate)
            {
                var da = _owner.Scratch("cross a", a.Length);
                var db = _owner.Scratch("cross b", b.Length);
                da.CopyFrom(a);
                db.CopyFrom(b);
                AddOnDevice(da.Pointer, db.Pointer, rows);
            }
        }

        public CudaDenseAlgebra Owner => _owner;

        /// <summary>AᵀB of the device blocks A (rows×k) and B (rows×columns), row-major, into the float64 sum, each stripe's product in <paramref name="math"/>; the caller holds the gate.</summary>
        public void AddOnDevice(ulong a, ulong b, int rows, GpuMath math = GpuMath.Fp32)
        {
            ObjectDisposedException.ThrowIf(_sum is null, this);
            // Row-major A (rows×k) and B (rows×columns) are column-major Aᵀ (k×rows) and Bᵀ (columns×rows). The row-major
            // sum S = AᵀB (k×columns) is column-major Sᵀ = Bᵀ·A; its columns [c0, c0 + w), S's rows, are Bᵀ·(rows of Aᵀ from c0)ᵀ.
            for (int c0 = 0; c0 < _k; c0 += _stripe)
            {
                int width = Math.Min(_stripe, _k - c0);
                _owner.Gemm(CudaMathLibraries.OpN, CudaMathLibraries.OpT, _columns, width, rows, b, _columns, a + 4UL * (ulong)c0, _k, _product.Pointer, _columns, math);
                CudaKernels.AddStripe.Launch(_owner.DenseKernels, ElementGrid((long)_columns * width), 256, 0, (_product.Pointer, width, _sum.Pointer, _columns, c0));
            }
        }

        /// <summary>The sum's device buffer, handed to the caller, who disposes it; the accumulator is spent. The caller holds the gate.</summary>
        public DeviceBuffer<double> TakeSum()
        {
            ObjectDisposedException.ThrowIf(_sum is null, this);
            var sum = _sum;
            _sum = null;
            _product.Dispose();
            return sum;
        }

        public double[] Sum()
        {
            ObjectDisposedException.ThrowIf(_sum is null, this);
            var sum = new double[(long)_k * _columns];
            lock (_owner._gate)
                _sum.CopyTo(sum);
            return sum;
        }

        public void Dispose()
        {
            lock (_owner._gate)
            {
                if (_sum is null)
                    return;
                _sum.Dispose();
                _sum = null;
                _product.Dispose();
            }
        }
    }

    /// <summary>
    /// Cholesky of the row-major SPD matrix (n×n float64) at <paramref name="a"/> in place on the device: on success the
    /// lower triangle holds L (the strict upper triangle keeps its input); false when not positive definite. The caller
    /// holds <see cref="Gate"/>.
    /// </summary>
    internal bool TryCholeskyOnDevice(ulong a, int n)
    {
        using var dinfo = _context.Allocate<int>(1);
        // The row-major symmetric matrix is its own column-major transpose; the column-major upper factor U
        // (A = UᵀU) read back row-major is L = Uᵀ in the lower triangle.
        Check(CudaMathLibraries.cusolverDnDpotrf_bufferSize(_cusolver, CudaMathLibraries.FillUpper, n, a, n, out int work), "cusolverDnDpotrf_bufferSize");
        using var dwork = _context.Allocate<double>(Math.Max(1, work));
        Check(CudaMathLibraries.cusolverDnDpotrf(_cusolver, CudaMathLibraries.FillUpper, n, a, n, dwork.Pointer, work, dinfo.Pointer), "cusolverDnDpotrf");
        Span<int> result = stackalloc int[1];
        dinfo.CopyTo(result);
        return result[0] == 0;
    }

    private static bool ClearUpperAndCheck(Span<double> a, int n)
    {
        fixed (double* p = a)
        {
            nint address = (nint)p;
            bool finite = true;
            Parallel.For(0, n, i =>
            {
                var row = new Span<double>((double*)address + (long)i * n, n);
                row[(i + 1)..].Clear();
                if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<double>(row[..(i + 1)]))
                    finite = false;
            });
            return finite;
        }
    }

    /// <summary>The arithmetic of the Gram sums' products on this device.</summary>
    public GpuMath GramMath { get; }

    public IGramAccumulator CreateGramAccumulator(int k) => new CudaGramAccumulator(this, k, CudaGramAccumulator.StripeWidth(k));

    /// <summary>An accumulator whose product goes in stripes of <paramref name="stripe"/> columns (tests: stripes at a small k).</summary>
    internal IGramAccumulator CreateGramAccumulator(int k, int stripe) => new CudaGramAccumulator(this, k, Math.Clamp(stripe, 1, k));

    /// <summary>Device bytes of a Gram accumulator of width k until its mean is read: the float64 sum and a float32 product stripe.</summary>
    public static long GramBytes(int k) => CudaGramAccumulator.Bytes(k);

    private sealed class CudaGramAccumulator : IGramAccumulator
    {
        /// <summary>
        /// Values of the float32 product a row block's XᵀX passes through before it is added to the float64 sum: at most
        /// 2^26 (256 MiB), in column stripes when k² is more (SSYRK on each stripe's diagonal block, SGEMM below it). A
        /// whole 28672² product (a 70B down_proj) was 3.3 GB beside its 6.6 GB sum; k ≤ 8192 is one stripe, summed
        /// exactly as before.
        /// </summary>
        internal const long ProductValues = 1L << 26;

        private readonly CudaDenseAlgebra _owner;
        private readonly int _k;
        private readonly int _stripe;
        private readonly DeviceBuffer<double> _sum;
        private readonly DeviceBuffer<float> _product;

        public CudaGramAccumulator(CudaDenseAlgebra owner, int k, int stripe)
        {
            _owner = owner;
            _k = k;
            _stripe = stripe;
            // Only the lower triangle is ever added to; Sum() and Mean() mirror it.
            (_sum, _product) = owner.AllocateStripedSum(k, stripe);
        }

        /// <summary>Columns per stripe of the product: all k when k² fits <see cref="ProductValues"/>, else the most that fit, a multiple of 128.</summary>
        internal static int StripeWidth(int k) =>
            (long)k * k <= ProductValues ? k : (int)Math.Max(128, ProductValues / k / 128 * 128);

        /// <summary>Device bytes of an accumulator of width k: the float64 sum and the product stripe.</summary>
        internal static long Bytes(int k) => 8L * k * k + 4L * k * StripeWidth(k);

        public CudaDenseAlgebra Owner => _owner;

        public void Add(ReadOnlySpan<float> x, int rows)
        {
            if (x.Length != (long)rows * _k)
                throw new ArgumentException($"expected {rows}×{_k} values", nameof(x));
            lock (_owner._gate)
            {
                var dx = _owner.Scratch("x", x.Length);
                dx.CopyFrom(x);
                AddOnDevice(dx.Pointer, rows);
            }
        }

        /// <summary>
        /// XᵀX of the device rows into the float64 sum; the caller holds the gate. In FP32 one triangle only (SSYRK):
        /// the full SGEMM computed every product twice, and at 512,000 calibration tokens the Gram sums of an 8B layer
        /// were ≈ 5 of the capture's 8 s on an H200 (docs/benchmarks.md, "The GPU forward"). In TF32 the whole stripe
        /// in one tensor-core GEMM (twice the diagonal block's products at several times FP32's rate: an 8B
        /// down_proj's Gram at 250 × 2048 is ≈ 1.05·10¹⁴ FLOP, about 2 s in FP32); the float64 sum is the same.
        /// </summary>
        public void AddOnDevice(ulong x, int rows)
        {
            ObjectDisposedException.ThrowIf(_sum.Pointer == 0, this);
            // X row-major (rows×k) is column-major Xᵀ (k×rows); Xᵀ·(Xᵀ)ᵀ = XᵀX, its lower triangle in column-major order.
            // A stripe of columns [c0, c1) holds rows [c0, k): its diagonal block by SSYRK, the rows below by SGEMM.
            for (int c0 = 0; c0 < _k; c0 += _stripe)
            {
                int width = Math.Min(_stripe, _k - c0), height = _k - c0, below = height - width;
                ulong stripe = x + 4UL * (ulong)c0;
                if (_owner.GramMath != GpuMath.Fp32)
                {
                    _owner.Gemm(CudaMathLibraries.OpN, CudaMathLibraries.OpT, height, width, rows, stripe, _k, stripe, _k, _product.Pointer, height, _owner.GramMath);
                }
                else
                {
                    _owner.Syrk(width, rows, stripe, _k, _product.Pointer, height);
                    if (below > 0)
                        _owner.Sgemm(CudaMathLibraries.OpN, CudaMathLibraries.OpT, below, width, rows, stripe + 4UL * (ulong)width, _k, stripe, _k, 0f,
                            _product.Pointer + 4UL * (ulong)width, height);
                }
                long count = (long)height * width;
                CudaKernels.AddLowerStripe.Launch(_owner.DenseKernels, ElementGrid(count), 256, 0, (_product.Pointer, height, width, _sum.Pointer, _k, c0));
            }
        }

        public double[] Sum()
        {
            var sum = new double[(long)_k * _k];
            lock (_owner._gate)
            {
                MirrorOnDevice();
                _sum.CopyTo(sum);
            }
            return sum;
        }

        public GramMean Mean(double count, int paddedK)
        {
            if (paddedK < _k)
                throw new ArgumentException($"a {_k}×{_k} sum cannot be padded to {paddedK}", nameof(paddedK));
            var values = new float[(long)paddedK * paddedK];
            var diagonal = new double[_k];
            lock (_owner._gate)
            {
                MirrorOnDevice();
                // The product's memory goes first: the mean (4 bytes an entry) then fits where it was for k ≤ 8192.
                _product.Dispose();
                using var mean = _owner._context.Allocate<float>((long)paddedK * paddedK);
                using var diag = _owner._context.Allocate<double>(_k);
                long entries = (long)paddedK * paddedK;
                CudaKernels.GramMean.Launch(_owner.DenseKernels, ElementGrid(entries), 256, 0, (_sum.Pointer, _k, count, mean.Pointer, paddedK, diag.Pointer));
                _sum.Dispose();
                mean.CopyTo(values);
                diag.CopyTo(diagonal);
            }
            return new GramMean(values, diagonal);
        }

        /// <summary>The mean as <see cref="Mean"/> computes it, left on the device: only the k doubles of its diagonal come down.</summary>
        public ResidentGramMean? MeanInPlace(double count, int paddedK)
        {
            if (paddedK < _k)
                throw new ArgumentException($"a {_k}×{_k} sum cannot be padded to {paddedK}", nameof(paddedK));
            var diagonal = new double[_k];
            lock (_owner._gate)
            {
                MirrorOnDevice();
                _product.Dispose();
                var mean = _owner._context.Allocate<float>((long)paddedK * paddedK);
                try
                {
                    using var diag = _owner._context.Allocate<double>(_k);
                    long entries = (long)paddedK * paddedK;
                    CudaKernels.GramMean.Launch(_owner.DenseKernels, ElementGrid(entries), 256, 0, (_sum.Pointer, _k, count, mean.Pointer, paddedK, diag.Pointer));
                    _sum.Dispose();
                    diag.CopyTo(diagonal);
                }
                catch
                {
                    mean.Dispose();
                    throw;
                }
                return new ResidentGramMean(new CudaResidentMatrix(_owner, mean, paddedK), diagonal);
            }
        }

        /// <summary>The lower triangle copied onto the upper on the device (the host's strided copy of 14336² values took 2 s, H200); the caller holds the gate.</summary>
        private void MirrorOnDevice()
        {
            ObjectDisposedException.ThrowIf(_sum.Pointer == 0, this);
            // The first linear of a group to start finalizes its Hessian, on whichever thread (and, with several
            // devices, whichever device's worker) that is: this sum's context must be the current one.
            _owner._context.MakeCurrent();
            long tiles = (_k + 31) / 32;
            CudaKernels.MirrorLower.Launch(_owner.DenseKernels, checked((uint)(tiles * tiles)), 256, 0, (_sum.Pointer, _k));
        }

        public void Dispose()
        {
            _sum.Dispose();
            _product.Dispose();
        }
    }

    /// <summary>Kernels/dense.cu, compiled on first use (Gram sums and the proxy traces).</summary>
    internal CudaModule DenseKernels => _denseKernels ??= _context.Module(CudaKernels.DenseSource, new Dictionary<string, string>());

    /// <summary>Blocks of 256 threads for an element-wise dense.cu kernel over <paramref name="count"/> values; its grid-stride loop covers the rest past 4,096 blocks.</summary>
    private static uint ElementGrid(long count) => (uint)Math.Min(4096, (count + 255) / 256);

    /// <summary>
    /// Row-major y (m, n) = x (m, k) · Wᵀ, W (n, k), all on the device, in <paramref name="math"/> (only the forward's
    /// activation products pass anything but FP32); the caller holds <see cref="Gate"/>.
    /// </summary>
    internal void LinearOnDevice(ulong x, ulong w, ulong y, int m, int n, int k, GpuMath math = GpuMath.Fp32) =>
        // Row-major y = x·Wᵀ is column-major yᵀ (n×m) = W(n×k, stored as k×n col-major, transposed) · xᵀ (k×m).
        Gemm(CudaMathLibraries.OpT, CudaMathLibraries.OpN, n, m, k, w, k, x, k, y, n, math);

    /// <summary>
    /// Column-major GEMMs of one shape over device arrays of operand pointers (attention: one product per row and
    /// head), beta 0, in <paramref name="math"/>; the caller holds <see cref="Gate"/>.
    /// </summary>
    internal void GemmBatched(int transa, int transb, int m, int n, int k, float alpha, ulong aArray, int lda, ulong bArray, int ldb, ulong cArray, int ldc, int batch,
        GpuMath math)
    {
        float beta = 0f;
        _context.MakeCurrent();
        if (math == GpuMath.Fp32)
        {
            Check(CudaMathLibraries.cublasSgemmBatched(_cublas, transa, transb, m, n, k, &alpha, aArray, lda, bArray, ldb, &beta, cArray, ldc, batch), "cublasSgemmBatched");
            return;
        }
        Check(CudaMathLibraries.cublasGemmBatchedEx(_cublas, transa, transb, m, n, k, &alpha, aArray, CudaMathLibraries.DataFloat, lda, bArray, CudaMathLibraries.DataFloat, ldb,
            &beta, cArray, CudaMathLibraries.DataFloat, ldc, batch, ComputeType(math), CudaMathLibraries.GemmDefault), "cublasGemmBatchedEx");
    }

    /// <summary>
    /// Column-major C = A·B (alpha 1, beta 0) in <paramref name="math"/>: FP32 through cublasSgemm as everywhere else,
    /// TF32 through cublasGemmEx with CUBLAS_COMPUTE_32F_FAST_TF32, per call, so no other product on the handle (Gram
    /// sums, LDLQ) can pick the tensor-core mode up. The caller holds <see cref="Gate"/>.
    /// </summary>
    internal void Gemm(int transa, int transb, int m, int n, int k, ulong a, int lda, ulong b, int ldb, ulong c, int ldc, GpuMath math)
    {
        if (math == GpuMath.Fp32)
        {
            Sgemm(transa, transb, m, n, k, a, lda, b, ldb, 0f, c, ldc);
            return;
        }
        float alpha = 1f, beta = 0f;
        _context.MakeCurrent();
        Check(CudaMathLibraries.cublasGemmEx(_cublas, transa, transb, m, n, k, &alpha, a, CudaMathLibraries.DataFloat, lda, b, CudaMathLibraries.DataFloat, ldb,
            &beta, c, CudaMathLibraries.DataFloat, ldc, ComputeType(math), CudaMathLibraries.GemmDefault), "cublasGemmEx");
    }

    private static int ComputeType(GpuMath math) => math switch
    {
        GpuMath.Fp32 => CudaMathLibraries.ComputeFloat,
        GpuMath.Tf32 => CudaMathLibraries.ComputeFastTf32,
        _ => throw new ArgumentOutOfRangeException(nameof(math), math, "no cuBLAS compute type for this math"),
    };

    /// <summary>
    /// Adds XᵀX of X (rows, k) already on the device to <paramref name="gram"/> when it is one of this algebra's
    /// accumulators; false (nothing added) otherwise. The caller holds <see cref="Gate"/>.
    /// </summary>
    internal bool TryAddGramOnDevice(IGramAccumulator gram, ulong x, int rows)
    {
        if (gram is not CudaGramAccumulator mine || !ReferenceEquals(mine.Owner, this))
            return false;
        mine.AddOnDevice(x, rows);
        return true;
    }

    /// <summary>
    /// Column-major C (n×n, lower triangle, leading dimension ldc) = A·Aᵀ for A (n×k, leading dimension lda), alpha 1,
    /// beta 0, plain FP32 on the default stream; the caller holds <see cref="Gate"/>.
    /// </summary>
    internal void Syrk(int n, int k, ulong a, int lda, ulong c, int ldc)
    {
        float alpha = 1f, beta = 0f;
        _context.MakeCurrent();
        Check(CudaMathLibraries.cublasSsyrk(_cublas, CudaMathLibraries.FillLower, CudaMathLibraries.OpN, n, k, &alpha, a, lda, &beta, c, ldc), "cublasSsyrk");
    }

    /// <summary>Column-major SGEMM (alpha 1) on the default stream, as cuBLAS takes it; the caller holds <see cref="Gate"/>.</summary>
    internal void Sgemm(int transa, int transb, int m, int n, int k, ulong a, int lda, ulong b, int ldb, float beta, ulong c, int ldc)
    {
        float alpha = 1f;
        _context.MakeCurrent();
        Check(CudaMathLibraries.cublasSgemm(_cublas, transa, transb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc), "cublasSgemm");
    }

    /// <summary>Weights on the device now (tests: an entry whose host array was collected is dropped).</summary>
    internal int CachedWeightCount => _weights.Count;

    /// <summary>
    /// Makes this algebra lean (a lean GPU memory plan): the bytes of weights kept on the device are capped besides their
    /// count (8) at <paramref name="weightCacheBytes"/>, one module's worth, enough for its forward to find every weight of
    /// the module on the device; the proxy traces go in column stripes (<see cref="LeanProxyStripeValues"/>).
    /// </summary>
    public void RunLean(long weightCacheBytes)
    {
        lock (_gate)
        {
            _weightCacheBytes = weightCacheBytes;
            _lean = true;
        }
    }

    /// <summary>Whether <see cref="RunLean"/> was called: a lean run keeps no basis Hessian on the device beside its factor (CudaLdlqSolver).</summary>
    internal bool IsLean
    {
        get
        {
            lock (_gate)
                return _lean;
        }
    }

    /// <summary>
    /// Weights kept on the device at most (<see cref="DefaultCachedWeights"/>). The drift target's sequential capture
    /// raises it for a block to both its original weights and their reconstructions, which the two streams' passes
    /// alternate per chunk: with 8 entries an 8B block's 14 re-uploaded 2.7 s of its down_proj capture on an H200.
    /// </summary>
    public int CachedWeights
    {
        get => _cachedWeights;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            lock (_gate)
            {
                _cachedWeights = value;
                while (_weights.Count > _cachedWeights)
                    DropLastWeight();
            }
        }
    }

    private int _cachedWeights = DefaultCachedWeights;

    /// <summary>Frees every cached weight (a lean plan, before quantizing: a module's original weights are not multiplied by again).</summary>
    public void ReleaseWeights()
    {
        lock (_gate)
        {
            while (_weights.Count > 0)
                DropLastWeight();
        }
    }

    /// <summary>
    /// Seconds the calling threads spent so far putting weights in the cache (allocation and copy), for `convert
    /// --timeline`. An upload at first use is a copy on the default stream, which waits for the kernels queued before it
    /// and holds back those after it; a <see cref="Preload"/> counts only its staging, the copy itself overlaps them.
    /// </summary>
    public double WeightUploadSeconds
    {
        get
        {
            lock (_gate)
                return (double)_weightUploadTicks / System.Diagnostics.Stopwatch.Frequency;
        }
    }

    private long _weightUploadTicks;
    private CudaUploadStream? _uploads;
    private bool _uploadsPending;

    /// <summary>Bytes of weights on the device now.</summary>
    internal long CachedWeightBytes => _weights.Sum(e => e.Device.Bytes);

    /// <summary>
    /// What this algebra keeps on the device between steps: the weight cache and the grow-only scratch, with its
    /// <paramref name="roles"/> largest roles (the forward's activations are "forward.slotN"); for the module line,
    /// where a plan's estimate is checked against what stayed.
    /// </summary>
    public (int Weights, long WeightBytes, long ScratchBytes, IReadOnlyList<(string Role, long Bytes)> Largest) Held(int roles = 4)
    {
        lock (_gate)
        {
            var largest = _scratch.OrderByDescending(e => e.Value.Bytes).Take(roles).Select(e => (e.Key, e.Value.Bytes)).ToList();
            return (_weights.Count, CachedWeightBytes, _scratch.Values.Sum(b => b.Bytes), largest);
        }
    }

    /// <summary>
    /// Puts <paramref name="weight"/> in the cache by a copy on the upload stream, which overlaps the kernels queued on
    /// the default stream (<see cref="CudaUploadStream"/>): a linear's reconstruction, made while other linears are
    /// still being quantized, is on the device when the forward first multiplies by it. Nothing when it is cached.
    /// </summary>
    public void Preload(float[] weight)
    {
        lock (_gate)
        {
            if (Cached(weight) is not null)
                return;
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            var device = Admit(weight.Length);
            _uploads ??= new CudaUploadStream(_context);
            _uploads.Upload(device, weight);
            _uploadsPending = true;
            _weights.AddFirst((new WeakReference<float[]>(weight), device));
            _weightUploadTicks += System.Diagnostics.Stopwatch.GetTimestamp() - started;
        }
    }

    /// <summary>
    /// Puts <paramref name="device"/>, already holding <paramref name="weight"/>'s values (a reconstruction made on this
    /// GPU, <see cref="CudaResidentWeight"/>), in the cache as that array's copy; the cache owns it from now. A copy the
    /// cache already holds for the array is kept and <paramref name="device"/> freed.
    /// </summary>
    internal void Adopt(float[] weight, DeviceBuffer<float> device)
    {
        lock (_gate)
        {
            if (Cached(weight) is not null)
            {
                device.Dispose();
                return;
            }
            MakeRoom(device.Bytes);
            _weights.AddFirst((new WeakReference<float[]>(weight), device));
        }
    }

    internal DeviceBuffer<float> CachedWeight(float[] weight)
    {
        if (Cached(weight) is { } cached)
        {
            // A preloaded weight is read by kernels on the default stream, which the upload stream does not order.
            WaitForUploads();
            return cached;
        }
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        var device = Admit(weight.Length);
        device.CopyFrom(weight);
        _weights.AddFirst((new WeakReference<float[]>(weight), device));
        _weightUploadTicks += System.Diagnostics.Stopwatch.GetTimestamp() - started;
        return device;
    }

    private void WaitForUploads()
    {
        if (!_uploadsPending)
            return;
        _uploads!.Wait();
        _uploadsPending = false;
    }

    /// <summary>Allocates room for a weight of <paramref name="values"/> floats, dropping the least recently used ones past the cache's bounds.</summary>
    private DeviceBuffer<float> Admit(int values)
    {
        MakeRoom(4L * values);
        return _context.Allocate<float>(values);
    }

    /// <summary>Drops the cached weights the cache's bounds say must go before one of <paramref name="bytes"/> comes in.</summary>
    private void MakeRoom(long bytes)
    {
        var entries = _weights.ToList();
        var evictions = WeightCachePolicy.Evictions(entries.Select(e => e.Device.Bytes).ToList(), bytes, CachedWeights, _weightCacheBytes, newestFirstOverBytes: _lean);
        if (evictions.Count > 0)
        {
            // Their uploads may still be running.
            WaitForUploads();
            foreach (int i in evictions)
            {
                entries[i].Device.Dispose();
                _weights.Remove(entries[i]);
            }
        }
    }

    /// <summary>The cached copy of <paramref name="weight"/>, moved to the front, or null; entries whose array was collected are dropped.</summary>
    private DeviceBuffer<float>? Cached(float[] weight)
    {
        for (var node = _weights.First; node is not null;)
        {
            var next = node.Next;
            if (!node.Value.Host.TryGetTarget(out var host))
            {
                WaitForUploads();
                node.Value.Device.Dispose();
                _weights.Remove(node);
            }
            else if (ReferenceEquals(host, weight))
            {
                _weights.Remove(node);
                _weights.AddFirst(node);
                return node.Value.Device;
            }
            node = next;
        }
        return null;
    }

    private void DropLastWeight()
    {
        // Its upload may still be running.
        WaitForUploads();
        _weights.Last!.Value.Device.Dispose();
        _weights.RemoveLast();
    }

    /// <summary>A grow-only device buffer per role, reused across calls.</summary>
    internal DeviceBuffer<float> Scratch(string role, long count)
    {
        if (_scratch.TryGetValue(role, out var buffer) && buffer.Count >= count)
            return buffer;
        buffer?.Dispose();
        // 25% headroom so slowly growing shapes do not reallocate every call.
        buffer = _context.Allocate<float>(count + count / 4);
        _scratch[role] = buffer;
        return buffer;
    }

    /// <summary>Checks x (m, k), W (n, k) and y (at least m·n) in 64 bits; returns m·n.</summary>
    private static int Check(int xLength, int wLength, int yLength, int m, int n, int k)
    {
        if (xLength != (long)m * k || wLength != (long)n * k || yLength < (long)m * n)
            throw new ArgumentException("matrix product operands do not match their shapes");
        return m * n;
    }

    private static void Check(int status, string call)
    {
        if (status != 0)
            throw new CudaException($"{call} failed with status {status}");
    }

    public void Dispose()
    {
        _context.MakeCurrent();
        _uploads?.Dispose();
        foreach (var (_, device) in _weights)
            device.Dispose();
        _weights.Clear();
        foreach (var b in _scratch.Values)
            b.Dispose();
        _scratch.Clear();
        CudaMathLibraries.cublasDestroy(_cublas);
        CudaMathLibraries.cusolverDnDestroy(_cusolver);
    }
}
