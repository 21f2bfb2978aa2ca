using Converter.Trellis.Codebooks;

namespace Converter.Exl3;

/// <summary>
/// One EXL3 linear layer as stored (docs/exl3-format.md §4.1): <c>trellis</c> int16 (k/16, n/16, 16·K),
/// <c>suh</c>/<c>svh</c> fp16 (k,)/(n,), the codebook its marker names, optional fp16 bias. k and n are the padded
/// widths. Scales and bias are held as float32 but always fp16-exact. Read with <see cref="Exl3LinearReader"/>,
/// written with <see cref="Exl3LinearWriter"/>, reconstructed with <see cref="Exl3Reconstruction"/>.
/// </summary>
public sealed record Exl3Linear(string Prefix, short[] Trellis, int PaddedIn, int PaddedOut, int Bits, float[] Suh, float[] Svh,
    CodebookSpec Codebook, float[]? Bias)
{
    public long[] TrellisShape => [PaddedIn / 16, PaddedOut / 16, 16 * Bits];

    /// <summary>Bytes the weight takes in the file without the bias: trellis, suh, svh and the marker (bpw accounting, §4.3).</summary>
    public long WeightBytes => Trellis.Length * 2L + (Suh.Length + Svh.Length) * 2L + (Exl3CodebookMarker.TensorOf(Codebook) is null ? 0 : 4);
}
