using Converter.Formats.Safetensors;

namespace Converter.Exl3;

/// <summary>Finds and reads stored EXL3 linears (docs/exl3-format.md §4.1), ours or exllamav3's, validating as it goes.</summary>
public static class Exl3LinearReader
{
    /// <summary>Loaders detect EXL3 storage by tensor presence (§0): trellis, su or suh, sv or svh.</summary>
    public static bool IsStoredIn(ITensorReader reader, string prefix) =>
        reader.Contains(prefix + ".trellis")
        && (reader.Contains(prefix + ".suh") || reader.Contains(prefix + ".su"))
        && (reader.Contains(prefix + ".svh") || reader.Contains(prefix + ".sv"));

    /// <summary>The prefixes of every stored EXL3 linear, in file order.</summary>
    public static IEnumerable<string> Prefixes(ITensorReader reader) =>
        reader.TensorNames.Where(n => n.EndsWith(".trellis", StringComparison.Ordinal)).Select(n => n[..^".trellis".Length]).Where(p => IsStoredIn(reader, p));

    /// <summary>K of a stored linear from its trellis shape (§4.1: K = shape[-1] / 16), without reading the data.</summary>
    public static int BitsOf(ITensorReader reader, string prefix) => (int)reader.Info(prefix + ".trellis").Shape[2] / 16;

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
        var codebook = Exl3CodebookMarker.Read(reader, prefix);
        if (reader.Contains(prefix + ".scale"))
            throw new SafetensorsFormatException(file, prefix + ".scale", "a 'scale' tensor is no longer used by EXL3 and is not supported");

        float[]? bias = reader.Contains(prefix + ".bias") ? reader.ReadFloat32(prefix + ".bias") : null;
        return new Exl3Linear(prefix, reader.ReadRaw<short>(prefix + ".trellis"), k, n, bits, suh, svh, codebook, bias);
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
