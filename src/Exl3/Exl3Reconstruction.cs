using Converter.Regularize.Reconstruction;
using Converter.Trellis.Codebooks;

namespace Converter.Exl3;

/// <summary>
/// The weight a stored EXL3 linear stands for (docs/exl3-format.md §4.3): its trellis decoded with the codebook its
/// marker names, rotated and scaled by <see cref="LinearReconstruction"/>. The converter swaps this in for the
/// layers after it, and inspect and eval measure it, so all three see the same weight.
/// </summary>
public static class Exl3Reconstruction
{
    /// <summary>W (k, n) row-major at the padded widths.</summary>
    public static float[] Weight(Exl3Linear linear, CodebookTableCache codebooks) =>
        LinearReconstruction.Reconstruct(linear.Trellis, linear.PaddedIn, linear.PaddedOut, linear.Bits, codebooks.Get(linear.Codebook).Values, linear.Suh, linear.Svh);

    /// <summary>The HF weight (out, in) row-major: W transposed, the padding trimmed.</summary>
    public static float[] HfWeight(Exl3Linear linear, CodebookTableCache codebooks, int outFeatures, int inFeatures) =>
        LinearReconstruction.ToHfLayout(Weight(linear, codebooks), linear.PaddedIn, linear.PaddedOut, outFeatures, inFeatures);
}
