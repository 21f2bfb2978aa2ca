using System.Text.Json.Nodes;
using Converter.Exl3;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Tests.Loading;

/// <summary>
/// An EXL3-layout checkpoint built from a test model without running the quantizer: every linear gets random trellis
/// states, random fp16 scales and a codebook marker (cycling 3INST, MCG, MUL1 with a non-default multiplier), K cycling
/// 2..4, a padded fp16 bias where the layer has one; the head is stored as <c>lm_head.*</c> (EXL3, or when
/// <c>fp16Head</c> an fp16 <c>lm_head.weight</c> holding half the source head); embedding and norms are copied. Returns what was stored per linear.
/// </summary>
internal static class SyntheticExl3
{
    public static readonly CodebookSpec[] Codebooks =
    [
        CodebookSpec.Default(CodebookKind.ThreeInst),
        CodebookSpec.Default(CodebookKind.Mcg),
        CodebookSpec.Parse("mul1:0xAD9A2EC5"),
    ];

    public static Dictionary<string, Exl3Linear> Write(string sourceDir, string outDir, bool fp16Head, Action<JsonObject>? editConfig = null, int seed = 1)
    {
        var configJson = (JsonObject)ModelConfig.Load(sourceDir).Json.DeepClone();
        editConfig?.Invoke(configJson);
        configJson["quantization_config"] = new JsonObject { ["quant_method"] = "exl3", ["bits"] = 3.0, ["head_bits"] = fp16Head ? 16 : 4 };
        File.WriteAllText(Path.Combine(outDir, "config.json"), configJson.ToJsonString());
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(sourceDir, file), Path.Combine(outDir, file));

        var model = TransformerModel.FromConfig(ModelConfig.Load(outDir));
        var rng = new Random(seed);
        var stored = new Dictionary<string, Exl3Linear>();
        using var source = CheckpointReader.Open(sourceDir);
        var writer = new SafetensorsWriter();
        int index = 0;
        foreach (var module in model.Modules)
        {
            foreach (var linear in module.Linears)
            {
                if (fp16Head && linear == model.Head.Projection)
                {
                    // Halved (exactly), so a loader that read the tied embedding instead would be caught.
                    var halved = source.ReadFloat32(linear.WeightTensor).Select(v => v * 0.5f).ToArray();
                    writer.Add(PendingTensor.FromFloat32(TensorNames.Weight(linear.Name), [linear.OutFeatures, linear.InFeatures], halved, DType.F16));
                    continue;
                }
                var q = RandomLinear(linear, Codebooks[index % 3], 2 + index % 3, rng);
                index++;
                stored[linear.Name] = q;
                foreach (var t in Exl3LinearWriter.Tensors(q))
                    writer.Add(t);
            }
            var linearTensors = module.Linears.SelectMany(l => new[] { l.WeightTensor, l.BiasTensor }).ToHashSet();
            foreach (var name in module.TensorNames.Where(n => !linearTensors.Contains(n)))
                writer.Add(PendingTensor.CopyOf(source, name));
        }
        writer.Write(Path.Combine(outDir, "model.safetensors"));
        return stored;
    }

    private static Exl3Linear RandomLinear(Linear linear, CodebookSpec codebook, int bits, Random rng)
    {
        int k = Pad(linear.InFeatures), n = Pad(linear.OutFeatures);
        var trellis = new short[k / 16 * (n / 16) * 16 * bits];
        for (int i = 0; i < trellis.Length; i++)
            trellis[i] = (short)rng.Next(short.MinValue, short.MaxValue + 1);
        // Scales as the converter leaves them: fp16-exact, random sign, magnitude around 1/√(width).
        float[] Scales(int count, double magnitude) => Enumerable.Range(0, count)
            .Select(_ => (float)(Half)((rng.Next(2) * 2 - 1) * magnitude * (0.5 + rng.NextDouble()))).ToArray();
        float[]? bias = linear.HasBias ? Scales(n, 0.1) : null;
        return new Exl3Linear(linear.Name, trellis, k, n, bits, Scales(k, 1.0 / Math.Sqrt(k)), Scales(n, 1.0), codebook, bias);
    }

    public static int Pad(int width) => (width + 127) / 128 * 128;
}
