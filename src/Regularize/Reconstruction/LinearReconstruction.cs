using Converter.Compute;
using Converter.Regularize.Hadamard;
using Converter.Trellis.Tiles;

namespace Converter.Regularize.Reconstruction;

/// <summary>
/// The EXL3 reconstruction of one linear layer (docs/exl3-format.md §4.3):
/// <c>W = diag(suh) · Had_k · Ŵ · Had_n · diag(svh)</c>, with Ŵ the decoded trellis (k, n).
/// </summary>
public static class LinearReconstruction
{
    /// <summary>Decodes the packed trellis and applies both rotations and scales; returns W (k, n) row-major.</summary>
    public static float[] Reconstruct(ReadOnlySpan<short> trellis, int k, int n, int bits, ReadOnlySpan<float> codebook, ReadOnlySpan<float> suh, ReadOnlySpan<float> svh)
    {
        if (k % TileLayout.Side != 0 || n % TileLayout.Side != 0)
            throw new ArgumentException($"({k}, {n}) is not a whole number of 16×16 tiles");
        var w = new float[ArrayLength.Of(k, n, "reconstructed weight")];
        TrellisDecoder.Decode(trellis, k / TileLayout.Side, n / TileLayout.Side, bits, codebook, w);
        ApplyRotationsAndScales(w, k, n, suh, svh);
        return w;
    }

    /// <summary>
    /// <see cref="Reconstruct"/> from Ŵ already decoded (LDLQ's Q, <see cref="Quantization.QuantizedLinear.Decoded"/>):
    /// the rotations and scales applied to <paramref name="decoded"/> in place, which is returned.
    /// </summary>
    public static float[] FromDecoded(float[] decoded, int k, int n, ReadOnlySpan<float> suh, ReadOnlySpan<float> svh)
    {
        if (decoded.Length != (long)k * n)
            throw new ArgumentException($"a decoded ({k}, {n}) weight has {(long)k * n} values, got {decoded.Length}");
        ApplyRotationsAndScales(decoded, k, n, suh, svh);
        return decoded;
    }

    /// <summary>
    /// The HF weight (out, in) row-major from W (k, n): transposed, with the padding rows and columns (§4.1: k and n
    /// are the widths padded to multiples of 128) trimmed.
    /// </summary>
    public static float[] ToHfLayout(ReadOnlySpan<float> w, int k, int n, int outFeatures, int inFeatures)
    {
        if (w.Length != (long)k * n || inFeatures > k || outFeatures > n)
            throw new ArgumentException($"a ({k}, {n}) reconstruction cannot hold an ({outFeatures}, {inFeatures}) weight");
        var hf = Quantization.WeightArrays.Uninitialized(ArrayLength.Of(outFeatures, inFeatures, "weight"));
        BlockTranspose.Into(w, inFeatures, outFeatures, n, hf, inFeatures);
        return hf;
    }

    /// <summary>Ŵ → diag(suh)·Had·Ŵ·Had·diag(svh) in place (the order of LinearEXL3.get_weight_tensor).</summary>
    public static void ApplyRotationsAndScales(Span<float> w, int k, int n, ReadOnlySpan<float> suh, ReadOnlySpan<float> svh)
    {
        if (suh.Length != k || svh.Length != n)
            throw new ArgumentException($"suh has {suh.Length} values and svh {svh.Length}; expected {k} and {n}");
        HadamardTransform.LeftMultiply(w, k, n);
        HadamardTransform.RightMultiply(w, k, n);
        var columnScales = svh.ToArray();
        var rowScales = suh.ToArray();
        RowParallel.ForEach(w, k, n, (row, r) =>
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(row, columnScales, row);
            System.Numerics.Tensors.TensorPrimitives.Multiply(row, rowScales[r], row);
        });
    }
}
