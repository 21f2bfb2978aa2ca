using Converter.Exl3;
using Converter.Formats.Safetensors;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Inspection;

/// <summary>One stored linear (or plain tensor) of a converted model; field names are `inspect --json`'s keys.</summary>
public sealed record InspectedTensor(
    string Name,
    string Format,
    int? Bits,
    string? Codebook,
    string? Multiplier,
    int InFeatures,
    int OutFeatures,
    int? PaddedIn,
    int? PaddedOut,
    long StoredBytes,
    double BitsPerWeight,
    double? ProxyErr,
    double? RelativeError);

/// <summary>
/// Per-tensor report of a converted model: K, codebook, shapes, bits per weight including the
/// suh/svh overhead, the proxy error the converter logged, and with a reference model the relative reconstruction
/// error ‖W − Ŵ‖/‖W‖ with Ŵ rebuilt exactly as §4.3 says.
/// </summary>
public static class ModelInspection
{
    public static IReadOnlyList<InspectedTensor> Inspect(ITensorReader quantized, ReferenceWeights? reference,
        IReadOnlyDictionary<string, double>? proxyErrors, CodebookTableCache tables, IProgress<string>? progress = null)
    {
        var rows = new List<InspectedTensor>();
        foreach (var prefix in Exl3LinearReader.Prefixes(quantized).ToList())
        {
            progress?.Report(prefix);
            var linear = Exl3LinearReader.Read(quantized, prefix);
            var (inFeatures, outFeatures, original) = ReferenceWeight(reference, prefix, linear);
            double? error = original is null ? null
                : RelativeError(original, Exl3Reconstruction.Weight(linear, tables), outFeatures, inFeatures, linear.PaddedOut);
            long bytes = linear.WeightBytes;
            rows.Add(new InspectedTensor(prefix, "exl3", linear.Bits, linear.Codebook.Name, linear.Codebook.MultiplierHex, inFeatures, outFeatures, linear.PaddedIn, linear.PaddedOut,
                bytes, bytes * 8.0 / ((double)inFeatures * outFeatures), proxyErrors?.GetValueOrDefault(prefix), error));
        }
        foreach (var name in quantized.TensorNames.Where(n => n.EndsWith(".weight", StringComparison.Ordinal)))
        {
            var info = quantized.Info(name);
            if (info.Rank != 2)
                continue;
            rows.Add(new InspectedTensor(name[..^".weight".Length], info.DType.SafetensorsName().ToLowerInvariant(), null, null, null, (int)info.Shape[1], (int)info.Shape[0],
                null, null, info.ByteLength, info.ByteLength * 8.0 / info.ElementCount, null, null));
        }
        return rows;
    }

    /// <summary>Unpadded dims and the original weight (out, in) when a reference is given; without one the padded dims.</summary>
    private static (int In, int Out, float[]? Weight) ReferenceWeight(ReferenceWeights? reference, string prefix, Exl3Linear linear) =>
        reference is null ? (linear.PaddedIn, linear.PaddedOut, null) : reference.Read(prefix);

    /// <summary>‖W − Ŵ‖/‖W‖ with W the HF (out, in) weight and Ŵ the padded (k, n) reconstruction.</summary>
    private static double RelativeError(float[] original, float[] reconstructed, int outFeatures, int inFeatures, int paddedOut)
    {
        double diff = 0, norm = 0;
        for (int o = 0; o < outFeatures; o++)
        {
            for (int i = 0; i < inFeatures; i++)
            {
                double w = original[o * inFeatures + i], d = w - reconstructed[i * paddedOut + o];
                diff += d * d;
                norm += w * w;
            }
        }
        return Math.Sqrt(diff / norm);
    }
}
