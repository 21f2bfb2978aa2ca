using System.Text.Json.Serialization;
using Converter.Conversion.Reporting;

namespace Converter.Conversion.Pipeline.Allocation;

/// <summary>
/// Whether `trellis measure` lets the rest of a unit's block answer its error before the KL is taken. The default
/// quantizer (the sequential drift target) quantizes each later sublayer of a block toward the original model's
/// outputs from the already-quantized stream, so part of an earlier sublayer's error is taken back there (v_proj's
/// by o_proj, which sees it linearly; up_proj's by down_proj), and a unit measured alone in the original model looks
/// more harmful than it is in the conversion.
/// </summary>
[JsonConverter(typeof(LowerCaseEnumJsonConverter<MeasureCompensation>))]
public enum MeasureCompensation
{
    /// <summary>The unit alone is quantized; everything else stays original (exllamav3's quantizer sees that).</summary>
    None,

    /// <summary>The later sublayers of the unit's block take their drift targets (unquantized) before the KL is taken.</summary>
    Block,
}
