using System.Text.Json.Nodes;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;

namespace Converter.Convert.Tests;

/// <summary>
/// Test-side encoder of a block-scaled FP8 checkpoint in DeepSeek-V3's layout: chosen 2-D weights become
/// float8_e4m3fn (round to nearest, ties to the even code) with a float32 <c>weight_scale_inv</c> of amax/448 per
/// 128×128 block, config.json gains quantization_config {quant_method: "fp8", weight_block_size: [128, 128]}, all
/// else is copied. Decodes independently of src/ (its own bit arithmetic), so what the converter reads can be
/// checked against it.
/// </summary>
internal static class Fp8Checkpoint
{
    public const int Block = 128;

    private const float MaxFinite = 448f;

    /// <summary>The value of e4m3fn code <paramref name="code"/>: s.eeee.mmm, bias 7, exponent 0 subnormal, 0x7F/0xFF NaN.</summary>
    public static float Decode(byte code)
    {
        int e = (code >> 3) & 0xF, m = code & 7;
        double v = e == 0xF && m == 7 ? double.NaN : e == 0 ? m / 8.0 * Math.Pow(2, -6) : (1 + m / 8.0) * Math.Pow(2, e - 7);
        return (float)((code & 0x80) != 0 ? -v : v);
    }

    private static readonly float[] Positive = Enumerable.Range(0, 0x7F).Select(c => Decode((byte)c)).ToArray();

    public static byte Encode(float value)
    {
        float magnitude = Math.Min(Math.Abs(value), MaxFinite);
        int best = 0;
        for (int c = 1; c < Positive.Length; c++)
        {
            float d = Math.Abs(Positive[c] - magnitude), bestD = Math.Abs(Positive[best] - magnitude);
            if (d < bestD || (d == bestD && c % 2 == 0))
                best = c;
        }
        return (byte)(best | (value < 0 ? 0x80 : 0));
    }

    /// <summary>
    /// Writes <paramref name="source"/> to <paramref name="target"/> with the weights <paramref name="quantize"/>
    /// picks in FP8, plus <paramref name="extra"/> tensors (e.g. an MTP layer's); returns each FP8 weight's
    /// dequantized values.
    /// </summary>
    public static Dictionary<string, float[]> Write(string source, string target, Func<string, bool> quantize, IReadOnlyDictionary<string, float[]>? extra = null)
    {
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(source).Select(Path.GetFileName).OfType<string>()
                     .Where(f => f != ModelConfig.FileName && !f.Contains(".safetensors", StringComparison.Ordinal)))
            File.Copy(Path.Combine(source, file), Path.Combine(target, file));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, ModelConfig.FileName)))!.AsObject();
        config["quantization_config"] = new JsonObject { ["quant_method"] = "fp8", ["activation_scheme"] = "dynamic", ["weight_block_size"] = new JsonArray(Block, Block) };
        File.WriteAllText(Path.Combine(target, ModelConfig.FileName), config.ToJsonString());

        var dequantized = new Dictionary<string, float[]>(StringComparer.Ordinal);
        using var reader = CheckpointReader.Open(source);
        var writer = new SafetensorsWriter();
        foreach (var name in reader.TensorNames)
        {
            var info = reader.Info(name);
            if (info.Rank != 2 || !quantize(name))
            {
                writer.Add(PendingTensor.CopyOf(reader, name));
                continue;
            }
            int rows = (int)info.Shape[0], cols = (int)info.Shape[1];
            var values = reader.ReadFloat32(name);
            int blockRows = (rows + Block - 1) / Block, blockCols = (cols + Block - 1) / Block;
            var scales = new float[blockRows * blockCols];
            var codes = new byte[values.Length];
            var decoded = new float[values.Length];
            for (int br = 0; br < blockRows; br++)
            {
                for (int bc = 0; bc < blockCols; bc++)
                {
                    float amax = 0;
                    for (int r = br * Block; r < Math.Min(rows, (br + 1) * Block); r++)
                        for (int c = bc * Block; c < Math.Min(cols, (bc + 1) * Block); c++)
                            amax = Math.Max(amax, Math.Abs(values[r * cols + c]));
                    float scale = amax > 0 ? amax / MaxFinite : 1f;
                    scales[br * blockCols + bc] = scale;
                    for (int r = br * Block; r < Math.Min(rows, (br + 1) * Block); r++)
                    {
                        for (int c = bc * Block; c < Math.Min(cols, (bc + 1) * Block); c++)
                        {
                            codes[r * cols + c] = Encode(values[r * cols + c] / scale);
                            decoded[r * cols + c] = Decode(codes[r * cols + c]) * scale;
                        }
                    }
                }
            }
            writer.AddBytes(name, DType.F8_E4M3, [rows, cols], codes);
            writer.AddFloat32(name + "_scale_inv", [blockRows, blockCols], scales);
            dequantized[name] = decoded;
        }
        foreach (var (name, values) in extra ?? new Dictionary<string, float[]>())
            writer.AddFloat32(name, [values.Length], values, DType.BF16);
        writer.Write(Path.Combine(target, "model.safetensors"));
        return dequantized;
    }
}
