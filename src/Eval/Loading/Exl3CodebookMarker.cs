using Converter.Formats.Exl3;
using Converter.Formats.Safetensors;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Loading;

/// <summary>
/// The codebook a stored EXL3 linear decodes with, from its marker tensor (docs/exl3-format.md §4.1): <c>mcg</c> → MCG,
/// <c>mul1</c> → MUL1, none → 3INST. The marker's value is taken as the multiplier: exllamav3 writes its locked
/// default there (and never reads it back), and our converter writes the multiplier it used, so models converted
/// with <c>--multiplier</c> decode correctly here.
/// </summary>
public static class Exl3CodebookMarker
{
    public static CodebookSpec SpecOf(Exl3Linear linear, string file)
    {
        var kind = linear.CodebookMarker switch
        {
            null => CodebookKind.ThreeInst,
            "mcg" => CodebookKind.Mcg,
            "mul1" => CodebookKind.Mul1,
            var m => throw new SafetensorsFormatException(file, linear.Prefix, $"unknown codebook marker '{m}'"),
        };
        if (kind == CodebookKind.ThreeInst)
            return CodebookSpec.Default(kind);
        var spec = new CodebookSpec(kind, linear.MarkerValue);
        try
        {
            spec.Validate();
        }
        catch (FormatException e)
        {
            throw new SafetensorsFormatException(file, linear.Prefix + "." + linear.CodebookMarker, e.Message);
        }
        return spec;
    }
}
