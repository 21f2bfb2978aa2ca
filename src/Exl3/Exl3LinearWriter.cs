using Converter.Formats.Safetensors;

namespace Converter.Exl3;

/// <summary>The tensors of an EXL3 linear as the converter writes them (docs/exl3-format.md §4.1).</summary>
public static class Exl3LinearWriter
{
    /// <summary>trellis, suh, svh, the codebook marker (none for 3INST) and the bias, in exllamav3's order.</summary>
    public static IEnumerable<PendingTensor> Tensors(Exl3Linear linear)
    {
        var prefix = linear.Prefix;
        yield return PendingTensor.FromArray(prefix + ".trellis", DType.I16, linear.TrellisShape, linear.Trellis);
        yield return PendingTensor.FromFloat32(prefix + ".suh", [linear.PaddedIn], linear.Suh, DType.F16);
        yield return PendingTensor.FromFloat32(prefix + ".svh", [linear.PaddedOut], linear.Svh, DType.F16);
        if (Exl3CodebookMarker.TensorOf(linear.Codebook) is { } marker)
            yield return PendingTensor.FromArray(prefix + "." + marker, DType.I32, [], [unchecked((int)linear.Codebook.Multiplier)]);
        if (linear.Bias is not null)
            yield return PendingTensor.FromFloat32(prefix + ".bias", [linear.Bias.Length], linear.Bias, DType.F16);
    }
}
