using Converter.Compute;
using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;

namespace Converter.Regularize.Quantization;

/// <summary>
/// Coordinate descent on the proxy error after LDLQ (issue 13 part 3, an experiment): each 16-row block is re-encoded
/// against the target that minimizes tr(EᵀHE) with every other block fixed, and each of its tiles keeps the new code
/// only when that lowers the objective. LDLQ sees only the blocks already quantized (below it); a refinement pass
/// also sees the ones above, and can undo a block's choice once its neighbours are known.
/// </summary>
/// <remarks>
/// With E = T − Q split into block b and the rest o, the objective's part that depends on E_b is
/// E_bᵀH_bb E_b + 2E_bᵀR with R = H_bo E_o, minimized at E_b = −H_bb⁻¹R, i.e. Q_b = T_b + H_bb⁻¹R. The encoder
/// minimizes the plain MSE to that target, not the H_bb-weighted one, so its answer is checked against the exact change
/// per tile (columns are independent, so tiles are decided one by one): the objective never increases.
/// G = H·E is kept up to date with a rank-16 update per block; it is recomputed at the start of every pass so rounding
/// does not accumulate. The updates run on the host (O(k²n) per pass).
/// </remarks>
public static class ProxyRefinement
{
    private const int Block = TileLayout.Side;

    /// <summary>Refines <paramref name="quantized"/> and <paramref name="states"/> in place; returns the tiles changed in each pass.</summary>
    /// <param name="target">T (k, n), what LDLQ quantized.</param>
    /// <param name="quantized">Q (k, n), the decoded states.</param>
    /// <param name="states">States, tile-major [k/16][n/16][256] in trellis-position order (<see cref="LdlqResult"/>).</param>
    /// <param name="hessian">H (k, k), symmetric positive definite, the basis of <paramref name="target"/>.</param>
    /// <param name="algebra">Where G = H·E is recomputed each pass (the CPU when null).</param>
    public static IReadOnlyList<int> Refine(ReadOnlySpan<float> target, float[] quantized, ushort[] states, float[] hessian, int k, int n,
        ITileEncoder encoder, int passes, IDenseAlgebra? algebra = null)
    {
        if (k % Block != 0 || n % Block != 0 || target.Length != (long)k * n || quantized.Length != target.Length || states.Length != target.Length
            || hessian.Length != (long)k * k)
            throw new ArgumentException($"refinement needs T, Q and states of ({k}, {n}) and H of ({k}, {k}), k and n multiples of {Block}");
        int tilesN = n / Block;
        var changed = new List<int>();
        var error = new float[target.Length];
        var product = new float[target.Length];
        var blockTarget = new float[Block * n];
        var tiles = new float[Block * n];
        var tileStates = new ushort[Block * n];
        var decoded = new float[Block * n];
        var newQ = new float[Block * n];
        var delta = new float[Block * n];
        var residual = new double[Block * n];
        var hbb = new double[Block * Block];
        var cholesky = new double[Block * Block];
        Span<float> rowMajor = stackalloc float[TileLayout.Length];

        for (int pass = 0; pass < passes; pass++)
        {
            System.Numerics.Tensors.TensorPrimitives.Subtract(target, quantized, error);
            Array.Clear(product);
            (algebra ?? CpuDenseAlgebra.Instance).MultiplyAdd(hessian, k, error, product, k, k, n);
            int passChanged = 0;
            for (int row0 = k - Block; row0 >= 0; row0 -= Block)
            {
                for (int i = 0; i < Block; i++)
                {
                    for (int j = 0; j < Block; j++)
                        hbb[i * Block + j] = hessian[(row0 + i) * k + row0 + j];
                }
                if (!TryCholesky(hbb, cholesky))
                    continue;

                // R = G_b − H_bb·E_b, and the block's new target T_b + H_bb⁻¹R, column by column.
                var x = new double[Block];
                for (int c = 0; c < n; c++)
                {
                    for (int i = 0; i < Block; i++)
                    {
                        double s = product[(row0 + i) * n + c];
                        for (int j = 0; j < Block; j++)
                            s -= hbb[i * Block + j] * error[(row0 + j) * n + c];
                        residual[i * n + c] = s;
                        x[i] = s;
                    }
                    CholeskySubstitution.Solve(cholesky, x, Block);
                    for (int i = 0; i < Block; i++)
                        blockTarget[i * n + c] = (float)(target[(row0 + i) * n + c] + x[i]);
                }

                for (int tn = 0; tn < tilesN; tn++)
                {
                    ScaleTileSampler.CopyTile(blockTarget, n, 0, tn, rowMajor);
                    TileLayout.ToPositionOrder(rowMajor, tiles.AsSpan(tn * TileLayout.Length, TileLayout.Length));
                }
                encoder.Encode(tiles, tileStates, decoded);

                Array.Clear(delta);
                int tk = row0 / Block, blockChanged = 0;
                for (int tn = 0; tn < tilesN; tn++)
                {
                    TileLayout.ToRowMajor(decoded.AsSpan(tn * TileLayout.Length, TileLayout.Length), rowMajor);
                    for (int r = 0; r < Block; r++)
                        rowMajor.Slice(r * Block, Block).CopyTo(newQ.AsSpan(r * n + tn * Block, Block));
                    double change = 0;
                    for (int c = tn * Block; c < tn * Block + Block; c++)
                        change += ColumnCost(target, row0, newQ, 0, c, n, hbb, residual) - ColumnCost(target, row0, quantized, row0, c, n, hbb, residual);
                    if (!(change < 0))
                        continue;
                    blockChanged++;
                    tileStates.AsSpan(tn * TileLayout.Length, TileLayout.Length).CopyTo(states.AsSpan((tk * tilesN + tn) * TileLayout.Length));
                    for (int r = 0; r < Block; r++)
                    {
                        for (int c = tn * Block; c < tn * Block + Block; c++)
                        {
                            int at = (row0 + r) * n + c;
                            // E changes by Q_old − Q_new.
                            delta[r * n + c] = quantized[at] - newQ[r * n + c];
                            quantized[at] = newQ[r * n + c];
                            error[at] = target[at] - quantized[at];
                        }
                    }
                }
                if (blockChanged > 0)
                    CpuDenseAlgebra.Instance.MultiplyAdd(hessian.AsSpan(row0), k, delta, product, k, Block, n);
                passChanged += blockChanged;
            }
            changed.Add(passChanged);
            if (passChanged == 0)
                break;
        }
        return changed;
    }

    /// <summary>eᵀH_bb e + 2eᵀr for column c of the block at <paramref name="row0"/>, e = T − Q, the block's Q starting at row <paramref name="qRow0"/> of <paramref name="q"/>.</summary>
    private static double ColumnCost(ReadOnlySpan<float> target, int row0, ReadOnlySpan<float> q, int qRow0, int c, int n, double[] hbb, double[] residual)
    {
        Span<double> e = stackalloc double[Block];
        for (int i = 0; i < Block; i++)
            e[i] = (double)target[(row0 + i) * n + c] - q[(qRow0 + i) * n + c];
        double cost = 0;
        for (int i = 0; i < Block; i++)
        {
            double he = 0;
            for (int j = 0; j < Block; j++)
                he += hbb[i * Block + j] * e[j];
            cost += e[i] * (he + 2 * residual[i * n + c]);
        }
        return cost;
    }

    /// <summary>Cholesky L·Lᵀ of a 16×16 block into <paramref name="l"/>; false when not positive definite.</summary>
    private static bool TryCholesky(double[] a, double[] l)
    {
        Array.Clear(l);
        for (int i = 0; i < Block; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                double s = a[i * Block + j];
                for (int p = 0; p < j; p++)
                    s -= l[i * Block + p] * l[j * Block + p];
                if (i == j)
                {
                    if (!(s > 0))
                        return false;
                    l[i * Block + i] = Math.Sqrt(s);
                }
                else
                {
                    l[i * Block + j] = s / l[j * Block + j];
                }
            }
        }
        return true;
    }

}
