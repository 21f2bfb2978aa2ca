using Converter.Formats.Safetensors;

namespace Converter.Formats.Exl3;

/// <summary>
/// The stored tensors of one EXL3 linear layer (docs/exl3-format.md §4.1): <c>trellis</c> int16 (k/16, n/16, 16·K),
/// <c>suh</c>/<c>svh</c> fp16 (k,)/(n,), the codebook marker, optional fp16 bias. k and n are the padded widths.
/// Scales are held as float32 but always fp16-exact.
/// </summary>
public sealed record Exl3Linear(string Prefix, short[] Trellis, int PaddedIn, int PaddedOut, int Bits, float[] Suh, float[] Svh,
    string? CodebookMarker, uint MarkerValue, float[]? Bias)
{
    /// <summary>Marker tensor suffixes (§4.1): at most one present; none means 3INST.</summary>
    public static readonly string[] MarkerSuffixes = ["mcg", "mul1"];

    public long[] TrellisShape => [PaddedIn / 16, PaddedOut / 16, 16 * Bits];

    /// <summary>Bytes these tensors occupy in the file (for bpw accounting including scale overhead).</summary>
    public long StorageBytes => Trellis.Length * 2L + (Suh.Length + Svh.Length) * 2L + (CodebookMarker is null ? 0 : 4) + (Bias?.Length ?? 0) * 2L;

    /// <summary>The tensors to write, in exllamav3's order.</summary>
    public IEnumerable<PendingTensor> ToPendingTensors()
    {
        yield return PendingTensor.FromArray(Prefix + ".trellis", DType.I16, TrellisShape, Trellis);
        yield return PendingTensor.FromFloat32(Prefix + ".suh", [PaddedIn], Suh, DType.F16);
        yield return PendingTensor.FromFloat32(Prefix + ".svh", [PaddedOut], Svh, DType.F16);
        if (CodebookMarker is not null)
            yield return PendingTensor.FromArray(Prefix + "." + CodebookMarker, DType.I32, [], [unchecked((int)MarkerValue)]);
        if (Bias is not null)
            yield return PendingTensor.FromFloat32(Prefix + ".bias", [Bias.Length], Bias, DType.F16);
    }

    /// <summary>Loaders detect EXL3 storage by tensor presence (§0): trellis, su or suh, sv or svh.</summary>
    public static bool IsStoredIn(ITensorReader reader, string prefix) =>
        reader.Contains(prefix + ".trellis")
        && (reader.Contains(prefix + ".suh") || reader.Contains(prefix + ".su"))
        && (reader.Contains(prefix + ".svh") || reader.Contains(prefix + ".sv"));

    /// <summary>Reads and validates a stored linear; a malformed one throws naming the file and tensor.</summary>
    public static Exl3Linear Read(ITensorReader reader, string prefix)
    {
        var trellisInfo = reader.Info(prefix + ".trellis");
        var file = reader.FileOf(prefix + ".trellis");
        if (trellisInfo.DType != DType.I16 || trellisInfo.Rank != 3 || trellisInfo.Shape[2] % 16 != 0
            || trellisInfo.Shape[2] / 16 is < 1 or > 8)
        {
            throw new SafetensorsFormatException(file, trellisInfo.Name,
                $"expected int16 (k/16, n/16, 16·K) with K in 1..8 (docs/exl3-format.md §4.1), found {trellisInfo.DType.SafetensorsName()} {trellisInfo.ShapeText}");
        }
        // Reconstruction needs the (k, n) matrix in one float array: say so here, naming the file, not as an overflow later.
        if (trellisInfo.Shape[0] * 16 * trellisInfo.Shape[1] * 16 > Array.MaxLength)
            throw new SafetensorsFormatException(file, trellisInfo.Name, $"a {trellisInfo.ShapeText} trellis reconstructs to more values than one array holds");
        int k = (int)trellisInfo.Shape[0] * 16, n = (int)trellisInfo.Shape[1] * 16, bits = (int)trellisInfo.Shape[2] / 16;
        var suh = ReadScale(reader, prefix, "suh", "su", k);
        var svh = ReadScale(reader, prefix, "svh", "sv", n);

        string? marker = null;
        uint value = 0;
        foreach (var suffix in MarkerSuffixes)
        {
            if (!reader.Contains(prefix + "." + suffix))
                continue;
            if (marker is not null)
                throw new SafetensorsFormatException(file, prefix, "has both mcg and mul1 codebook markers");
            marker = suffix;
            var raw = reader.ReadRaw<int>(prefix + "." + suffix);
            value = raw.Length == 1 ? unchecked((uint)raw[0]) : throw new SafetensorsFormatException(file, prefix + "." + suffix, "marker must hold one int32");
        }
        if (reader.Contains(prefix + ".scale"))
            throw new SafetensorsFormatException(file, prefix + ".scale", "a 'scale' tensor is no longer used by EXL3 and is not supported");

        float[]? bias = reader.Contains(prefix + ".bias") ? reader.ReadFloat32(prefix + ".bias") : null;
        return new Exl3Linear(prefix, reader.ReadRaw<short>(prefix + ".trellis"), k, n, bits, suh, svh, marker, value, bias);
    }

    private static float[] ReadScale(ITensorReader reader, string prefix, string name, string legacy, int length)
    {
        if (reader.Contains(prefix + "." + name))
        {
            var values = reader.ReadFloat32(prefix + "." + name);
            if (values.Length != length)
                throw new SafetensorsFormatException(reader.FileOf(prefix + "." + name), prefix + "." + name, $"has {values.Length} values, the trellis implies {length}");
            return values;
        }
        // Legacy sign bitfields (§4.1): 16 signs per int16 word, element i ↔ bit i, set bit = −1.
        var words = reader.ReadRaw<short>(prefix + "." + legacy);
        if (words.Length * 16 != length)
            throw new SafetensorsFormatException(reader.FileOf(prefix + "." + legacy), prefix + "." + legacy, $"has {words.Length * 16} signs, the trellis implies {length}");
        var signs = new float[length];
        for (int i = 0; i < length; i++)
            signs[i] = ((words[i / 16] >> (i % 16)) & 1) != 0 ? -1f : 1f;
        return signs;
    }
}
