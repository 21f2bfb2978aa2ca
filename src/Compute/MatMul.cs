using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Converter.Compute.Gemm;

namespace Converter.Compute;

/// <summary>
/// y = x·Wᵀ (+ bias) for row-major x (m, k) and W (n, k) — the HF linear layout, where every output is a dot product
/// of two contiguous rows. The hot path of the model forward: output tiles run in parallel, each tile walks the
/// shared dimension in cache-sized slices with a register-blocked 4×4 SIMD kernel (<see cref="IGemmKernel"/>).
/// </summary>
public static unsafe class MatMul
{
    // Tile sizes: a 4-row x slice (4·KC floats = 16 KiB) stays in L1 while the kernel streams the tile's NB rows of
    // W (NB·KC floats = 256 KiB) from L2 (1–2 MiB per core on current x86). KC also bounds how often the 16
    // accumulators are reduced horizontally (once per KC, a few % of the work at 1024). Measured with
    // MatMulBenchmark (tests/Models.Tests) on a shared 2-core Zen 4 VM: ~120–130 GFLOP/s on 512–4096-sized
    // shapes and up to ~180 at k = 256, against ~200 for a pure-FMA loop on both cores; KC 512/2048 and a 128-wide
    // W tile were not better within that machine's noise.
    private const int TileRows = 64;
    private const int TileCols = 64;
    private const int SliceK = 1024;

    /// <summary>y (m, n) = x (m, k) · Wᵀ + bias, W (n, k); <paramref name="bias"/> is empty or has n values.</summary>
    public static void MultiplyTransposed(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int m, int n, int k,
        ReadOnlySpan<float> bias = default) =>
        MultiplyTransposed(BestPath, x, w, y, m, n, k, bias);

    /// <summary>The widest kernel the machine runs natively.</summary>
    internal static GemmPath BestPath =>
        Vector512.IsHardwareAccelerated ? GemmPath.Vector512 : Vector256.IsHardwareAccelerated ? GemmPath.Vector256 : GemmPath.Portable;

    /// <summary>The same product with a chosen kernel, so tests can check every kernel the machine can run.</summary>
    internal static void MultiplyTransposed(GemmPath path, ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int m, int n, int k,
        ReadOnlySpan<float> bias = default)
    {
        CheckShapes(x.Length, w.Length, y.Length, bias.Length, m, n, k);
        if (m == 0 || n == 0)
            return;
        fixed (float* px = x, pw = w, py = y, pb = bias)
            Run(path, new Problem(px, k, pw, k, py, n, bias.IsEmpty ? null : pb, m, n, k), parallel: true);
    }

    /// <summary>
    /// Single-threaded y (m, n) = x·Wᵀ over strided rows (x row i at x + i·ldx, W row j at w + j·ldw, y row i at
    /// y + i·ldy), y overwritten: for callers that already run in parallel over independent products (attention).
    /// </summary>
    internal static void MultiplyTransposedSerial(float* x, nint ldx, float* w, nint ldw, float* y, nint ldy, int m, int n, int k)
    {
        if (m > 0 && n > 0)
            Run(BestPath, new Problem(x, ldx, w, ldw, y, ldy, null, m, n, k), parallel: false);
    }

    private static void Run(GemmPath path, Problem problem, bool parallel)
    {
        switch (path)
        {
            case GemmPath.Vector512:
                Run<Vector512GemmKernel>(problem, parallel);
                break;
            case GemmPath.Vector256:
                Run<Vector256GemmKernel>(problem, parallel);
                break;
            default:
                Run<PortableGemmKernel>(problem, parallel);
                break;
        }
    }

    /// <summary>x·Wᵀ + bias as a new (x.Rows, W.Rows) matrix.</summary>
    public static Matrix MultiplyTransposed(Matrix x, Matrix w, ReadOnlySpan<float> bias = default)
    {
        if (x.Cols != w.Cols)
            throw new ArgumentException($"x {x.ShapeText} and W {w.ShapeText} differ in the shared dimension");
        var y = new Matrix(x.Rows, w.Rows);
        MultiplyTransposed(x.Data, w.Data, y.Data, x.Rows, w.Rows, x.Cols, bias);
        return y;
    }

    /// <summary>
    /// The plain definition, one double-precision dot product per output, single-threaded: the reference the fast
    /// path is tested against. Far too slow for models.
    /// </summary>
    public static void Reference(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int m, int n, int k,
        ReadOnlySpan<float> bias = default)
    {
        CheckShapes(x.Length, w.Length, y.Length, bias.Length, m, n, k);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = bias.IsEmpty ? 0 : bias[j];
                for (int p = 0; p < k; p++)
                    s += (double)x[i * k + p] * w[j * k + p];
                y[i * n + j] = (float)s;
            }
        }
    }

    private static void Run<TKernel>(Problem problem, bool parallel) where TKernel : IGemmKernel
    {
        int tilesM = (problem.M + TileRows - 1) / TileRows;
        int tilesN = (problem.N + TileCols - 1) / TileCols;
        int tiles = tilesM * tilesN;
        if (tiles == 1 || !parallel)
        {
            for (int t = 0; t < tiles; t++)
                RunTile<TKernel>(problem, t % tilesM, t / tilesM);
            return;
        }
        // Consecutive tile indices share a W tile, so the threads working side by side read the same W from L3.
        Parallel.For(0, tiles, t => RunTile<TKernel>(problem, t % tilesM, t / tilesM));
    }

    private static void RunTile<TKernel>(Problem p, int tileM, int tileN) where TKernel : IGemmKernel
    {
        int i0 = tileM * TileRows, i1 = Math.Min(p.M, i0 + TileRows);
        int j0 = tileN * TileCols, j1 = Math.Min(p.N, j0 + TileCols);
        nint ldx = p.LdX, ldw = p.LdW, ldy = p.LdY;
        for (int i = i0; i < i1; i++)
        {
            var row = new Span<float>(p.Y + i * ldy + j0, j1 - j0);
            if (p.Bias == null)
                row.Clear();
            else
                new ReadOnlySpan<float>(p.Bias + j0, j1 - j0).CopyTo(row);
        }
        for (int k0 = 0; k0 < p.K; k0 += SliceK)
        {
            int kc = Math.Min(SliceK, p.K - k0);
            int i = i0;
            for (; i + 4 <= i1; i += 4)
            {
                float* x = p.X + i * ldx + k0;
                int j = j0;
                for (; j + 4 <= j1; j += 4)
                    TKernel.Tile4x4(x, ldx, p.W + j * ldw + k0, ldw, kc, p.Y + i * ldy + j, ldy);
                for (; j < j1; j++)
                {
                    for (int r = 0; r < 4; r++)
                        p.Y[(i + r) * ldy + j] += Dot(x + r * ldx, p.W + j * ldw + k0, kc);
                }
            }
            for (; i < i1; i++)
            {
                for (int j = j0; j < j1; j++)
                    p.Y[i * ldy + j] += Dot(p.X + i * ldx + k0, p.W + j * ldw + k0, kc);
            }
        }
    }

    private static float Dot(float* a, float* b, int length) =>
        TensorPrimitives.Dot(new ReadOnlySpan<float>(a, length), new ReadOnlySpan<float>(b, length));

    private static void CheckShapes(int xLength, int wLength, int yLength, int biasLength, int m, int n, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (xLength != (long)m * k)
            throw new ArgumentException($"x has {xLength} values, ({m}, {k}) needs {(long)m * k}");
        if (wLength != (long)n * k)
            throw new ArgumentException($"W has {wLength} values, ({n}, {k}) needs {(long)n * k}");
        if (yLength != (long)m * n)
            throw new ArgumentException($"y has {yLength} values, ({m}, {n}) needs {(long)m * n}");
        if (biasLength != 0 && biasLength != n)
            throw new ArgumentException($"bias has {biasLength} values, expected {n}");
    }

    /// <summary>The operands as pointers with row strides, so the parallel tile loop can capture them (spans cannot be captured).</summary>
    private readonly struct Problem(float* x, nint ldx, float* w, nint ldw, float* y, nint ldy, float* bias, int m, int n, int k)
    {
        public readonly float* X = x, W = w, Y = y, Bias = bias;
        public readonly nint LdX = ldx, LdW = ldw, LdY = ldy;
        public readonly int M = m, N = n, K = k;
    }
}
