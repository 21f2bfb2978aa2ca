using Converter.Compute;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;

namespace Converter.Regularize.Quantization;

/// <summary>States (tile-major: [tk][tn][256], position order) and the decoded matrix Q (k, n) of one LDLQ run.</summary>
public sealed record LdlqResult(ushort[] States, float[] Quantized);

/// <summary>
/// LDLQ of a held target (<see cref="ILdlqSolver.Quantize(LinearTarget, BasisFactor?, ITileEncoder)"/>): the states, and
/// Q on the host (<see cref="LinearTarget.QuantizedArray"/>), or null where Q stays where the target is held until
/// <see cref="LinearTarget.QuantizedOnHost"/> brings it down: a device keeps it for the proxy traces and the
/// reconstruction, which read it there (an 8B MLP linear's 235 MB download after its block loop, with the GPU idle).
/// </summary>
public sealed record HeldLdlqResult(ushort[] States, float[]? Quantized);

/// <summary>
/// LDLQ (docs/exl3-format.md §3.7): quantize the 16-row blocks of Wr from the last to the first, each target corrected by
/// the error of the rows already quantized, weighted by the strict block-lower LDL factor L_u. Within a block the
/// tiles are jointly Viterbi-coded, so no feedback runs inside a block. Feedback from finished 128-row spans is
/// applied once per span (exllamav3's prod_cache), feedback inside a span per block.
/// </summary>
public static class Ldlq
{
    /// <summary><paramref name="into"/> when it holds exactly <paramref name="size"/> values, a new array when null.</summary>
    public static float[] QuantizedArray(float[]? into, long size) =>
        into is null ? new float[size]
        : into.Length == size ? into
        : throw new ArgumentException($"the array for Q holds {into.Length} values, not {size}", nameof(into));

    private const int Span = 128;
    private const int Block = TileLayout.Side;

    /// <param name="wr">Regularized target (k, n), row-major.</param>
    /// <param name="factor">L_u (k×k, row-major), or null to quantize without feedback (fallback).</param>
    /// <param name="quantizedInto">An array of k·n values to hold Q (<see cref="ILdlqSolver.Quantize"/>), or null.</param>
    public static LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, float[]? factor, ITileEncoder encoder, float[]? quantizedInto = null)
    {
        if (k % Span != 0 || n % Span != 0 || wr.Length != (long)k * n)
            throw new ArgumentException($"LDLQ needs k and n padded to multiples of {Span} (docs/exl3-format.md §3.1), got ({k}, {n})");
        int tilesN = n / Block;
        var lt = factor is null ? null : Transpose(factor, k);
        int size = ArrayLength.Of(k, n, "LDLQ matrix");
        var error = new float[size];
        // Every value of Q is written below (each block's tiles), so a reused array needs no clearing.
        var quantized = QuantizedArray(quantizedInto, size);
        var states = new ushort[size];
        var spanFeedback = new float[Span * n];
        var target = new float[Block * n];
        var tiles = new float[Block * n];
        var tileStates = new ushort[Block * n];
        var decoded = new float[Block * n];
        Span<float> rowMajor = stackalloc float[TileLayout.Length];

        for (int spanStart = k - Span; spanStart >= 0; spanStart -= Span)
        {
            int spanEnd = spanStart + Span;
            // The feedback of the finished spans below this one: spanFeedback = lt[spanStart.., spanEnd..k) · error[spanEnd..k, :).
            Array.Clear(spanFeedback);
            if (lt is not null && spanEnd < k)
                CpuDenseAlgebra.Instance.MultiplyAdd(lt.AsSpan(spanStart * k + spanEnd), k, error.AsSpan(spanEnd * n), spanFeedback, Span, k - spanEnd, n);

            for (int row0 = spanEnd - Block; row0 >= spanStart; row0 -= Block)
            {
                int after = row0 + Block;
                var t = target.AsSpan();
                wr.Slice(row0 * n, Block * n).CopyTo(t);
                System.Numerics.Tensors.TensorPrimitives.Add(t, spanFeedback.AsSpan((row0 - spanStart) * n, Block * n), t);
                if (lt is not null && after < spanEnd)
                    CpuDenseAlgebra.Instance.MultiplyAdd(lt.AsSpan(row0 * k + after), k, error.AsSpan(after * n), t, Block, spanEnd - after, n);

                for (int tn = 0; tn < tilesN; tn++)
                {
                    ScaleSearch.ScaleTileSampler.CopyTile(t, n, 0, tn, rowMajor);
                    TileLayout.ToPositionOrder(rowMajor, tiles.AsSpan(tn * TileLayout.Length, TileLayout.Length));
                }
                encoder.Encode(tiles, tileStates, decoded);

                int tk = row0 / Block;
                for (int tn = 0; tn < tilesN; tn++)
                {
                    tileStates.AsSpan(tn * TileLayout.Length, TileLayout.Length).CopyTo(states.AsSpan((tk * tilesN + tn) * TileLayout.Length));
                    TileLayout.ToRowMajor(decoded.AsSpan(tn * TileLayout.Length, TileLayout.Length), rowMajor);
                    for (int r = 0; r < Block; r++)
                        rowMajor.Slice(r * Block, Block).CopyTo(quantized.AsSpan((row0 + r) * n + tn * Block, Block));
                }
                System.Numerics.Tensors.TensorPrimitives.Subtract(wr.Slice(row0 * n, Block * n), quantized.AsSpan(row0 * n, Block * n), error.AsSpan(row0 * n, Block * n));
            }
        }
        return new LdlqResult(states, quantized);
    }

    private static float[] Transpose(float[] m, int k)
    {
        var t = new float[ArrayLength.Of(k, k, "LDL factor")];
        BlockTranspose.Into(m, k, k, k, t, k);
        return t;
    }
}
