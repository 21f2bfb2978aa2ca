using Converter.Formats.Safetensors;
using Converter.Trellis.Codebooks;

namespace Converter.Exl3;

/// <summary>
/// The codebook marker of a stored EXL3 linear (docs/exl3-format.md §4.1): a 0-dim int32 tensor <c>mcg</c> → MCG or
/// <c>mul1</c> → MUL1, none → 3INST. The marker's value is the multiplier: exllamav3 writes its locked default there
/// (and never reads it back), and our converter writes the multiplier it used, so models converted with
/// <c>--multiplier</c> decode correctly here.
/// </summary>
public static class Exl3CodebookMarker
{
    /// <summary>Marker tensor suffixes (the registry's <see cref="CodebookDefinition.MarkerTensor"/>): at most one present.</summary>
    public static IReadOnlyList<string> Suffixes { get; } =
        CodebookRegistry.All.Select(d => d.MarkerTensor).OfType<string>().ToArray();

    /// <summary>The marker tensor's suffix for a codebook, or null for 3INST (no marker).</summary>
    public static string? TensorOf(CodebookSpec codebook) => codebook.Definition.MarkerTensor;

    /// <summary>The codebook the marker of <paramref name="prefix"/> names; a malformed or doubled marker throws naming the file and tensor.</summary>
    public static CodebookSpec Read(ITensorReader reader, string prefix)
    {
        string? marker = null;
        uint value = 0;
        foreach (var suffix in Suffixes)
        {
            var name = prefix + "." + suffix;
            if (!reader.Contains(name))
                continue;
            if (marker is not null)
                throw new SafetensorsFormatException(reader.FileOf(name), prefix, $"has both {marker} and {suffix} codebook markers");
            marker = suffix;
            var raw = reader.ReadRaw<int>(name);
            value = raw.Length == 1 ? unchecked((uint)raw[0]) : throw new SafetensorsFormatException(reader.FileOf(name), name, "marker must hold one int32");
        }
        return SpecOf(marker, value, marker is null ? "" : reader.FileOf(prefix + "." + marker), prefix);
    }

    /// <summary>The codebook of marker <paramref name="marker"/> (null: none) holding <paramref name="value"/>; an invalid multiplier names the tensor.</summary>
    public static CodebookSpec SpecOf(string? marker, uint value, string file, string prefix)
    {
        if (marker is null)
            return CodebookSpec.Default(CodebookKind.ThreeInst);
        var definition = CodebookRegistry.All.FirstOrDefault(d => d.MarkerTensor == marker)
            ?? throw new SafetensorsFormatException(file, prefix, $"unknown codebook marker '{marker}'");
        var spec = new CodebookSpec(definition.Kind, value);
        try
        {
            spec.Validate();
        }
        catch (FormatException e)
        {
            throw new SafetensorsFormatException(file, prefix + "." + marker, e.Message);
        }
        return spec;
    }
}
