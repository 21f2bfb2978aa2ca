using System.Text.Json.Nodes;
using Converter.Exl3;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;

namespace Converter.Eval.Loading;

/// <summary>
/// What a quantized checkpoint holds, for comparison tables: the bits its config.json claims, the bits the decoder
/// layers actually take in the file including the suh/svh scales (§4.3: K + 16·(k+n)/(k·n) per weight, measured
/// here from the stored tensors' byte sizes against the unpadded weight count), the head's bits, the codebook and the
/// calibration size quantization_config records (§4.5).
/// </summary>
/// <param name="Multiplier">Hex multiplier from the marker tensors; null for 3INST (no marker, a fixed LCG, §1.2).</param>
/// <param name="Calibration">"rows×cols" from quantization_config.calibration, or null.</param>
/// <param name="Exllamav3CanDecode">
/// False when a stored linear's multiplier is not the one exllamav3 locks for its codebook: exllamav3 ignores the
/// marker's value and decodes with its own, so such a model runs there as garbage (<see cref="Trellis.Codebooks.NonstandardMultiplier"/>).
/// </param>
public sealed record QuantizationSummary(
    double? ConfigBits,
    double BitsWithScales,
    int HeadBits,
    string Codebook,
    string? Multiplier,
    string? Calibration = null,
    bool Exllamav3CanDecode = true)
{
    public static QuantizationSummary Read(TransformerModel model, ITensorReader reader, ModelConfig config)
    {
        var quantConfig = config.Json["quantization_config"] as JsonObject;
        double? configBits = quantConfig?["bits"] is JsonValue v && v.TryGetValue<double>(out var b) ? b : null;
        string? calibration = quantConfig?["calibration"] is JsonObject cal && cal["rows"] is JsonValue rows && cal["cols"] is JsonValue cols
            ? $"{rows.ToJsonString()}×{cols.ToJsonString()}" : null;

        long weights = 0, bytes = 0;
        foreach (var linear in model.Layers.SelectMany(l => l.Linears))
        {
            weights += (long)linear.InFeatures * linear.OutFeatures;
            bytes += Exl3LinearReader.IsStoredIn(reader, linear.Name)
                ? StoredBytes(reader, linear.Name, "trellis", "suh", "su", "svh", "sv")
                : StoredBytes(reader, linear.Name, "weight");
        }

        var head = model.Head.Projection;
        int headBits = Exl3LinearReader.IsStoredIn(reader, head.Name) ? Exl3LinearReader.BitsOf(reader, head.Name) : 16;

        var markers = model.Modules.SelectMany(m => m.Linears)
            .Where(l => Exl3LinearReader.IsStoredIn(reader, l.Name))
            .Select(l => Exl3CodebookMarker.Read(reader, l.Name))
            .Distinct()
            .ToList();
        string codebook = markers.Count == 1 ? markers[0].Name : markers.Count == 0 ? "none" : "mixed";
        string? multiplier = markers.Count == 1 ? (Exl3CodebookMarker.TensorOf(markers[0]) is null ? null : markers[0].MultiplierHex) : markers.Count == 0 ? null : "mixed";
        return new QuantizationSummary(configBits, weights == 0 ? 0 : bytes * 8.0 / weights, headBits, codebook, multiplier, calibration,
            markers.All(m => m.IsDefaultMultiplier));
    }

    private static long StoredBytes(ITensorReader reader, string prefix, params string[] suffixes) =>
        suffixes.Where(s => reader.Contains(prefix + "." + s)).Sum(s => reader.Info(prefix + "." + s).ByteLength);
}
