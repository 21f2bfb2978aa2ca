using System.Text.Json.Nodes;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Models.Modules;
using Converter.TestSupport;
using NUnit.Framework;
using static Converter.Convert.Tests.SyntheticModelFixture;

namespace Converter.Convert.Tests;

/// <summary>
/// gpt-oss converts through the CLI into the names exllamav3's gpt_oss.py loads (BlockSparseMLP with
/// key_gate/up/down "experts.{E}.gate_proj"…: its fused-tensor keys are only a fallback for unquantized sources):
/// every expert's gate, up and down as its own EXL3 linear with its bias, the router's weight and bias and the
/// attention sinks copied unquantized; it evaluates against its original. The same model stored as a published
/// gpt-oss checkpoint is, MXFP4 experts (<c>*_blocks</c> + <c>*_scales</c>, encoded here from the bf16 ones), loads
/// to exactly the encoded values and converts, evals and inspects too. The fixture is ../shared's rand-gpt-oss cut to
/// one (sliding) layer and 128 expert channels for time, as MoeConversionTests cuts Mixtral. Skipped without ../shared.
/// </summary>
[NonParallelizable]
public class GptOssConversionTests
{
    private const int ExpertWidth = 128;

    /// <summary>
    /// The bf16 source. Slow: <see cref="Mxfp4SourceLoadsTheEncodedValuesAndConverts"/> converts the same cut model
    /// end to end and asserts the same layout, and what differs, reading the bf16 fused experts, is proven by the
    /// forward test against transformers (Models.Tests' ReferenceForwardTests runs rand-gpt-oss from bf16) and
    /// ExpertSliceTests.
    /// </summary>
    [Test, Category(SlowTests.Category)]
    public void ConvertsEveryExpertWithItsBiasAndKeepsRouterAndSinks()
    {
        var source = Cut(RepoPaths.RequireSharedModel("rand-gpt-oss"), NewPath("gpt-oss-cut"));
        var outDir = NewPath("gpt-oss");
        var (code, _, log) = Run(ConvertArgs(source, outDir, 2));
        Assert.That(code, Is.EqualTo(0), log);
        AssertExl3Layout(source, outDir);
        double kl = EvalKl(outDir, source, "gpt-oss (cut): 2 bpw");
        // Like the other mixtures at 2 bpw (0.14–0.17); a broken routing, gate/up order or bias gives KL of order 1 or NaN.
        Assert.That(kl, Is.GreaterThan(0).And.LessThan(0.5));
    }

    [Test]
    public void Mxfp4SourceLoadsTheEncodedValuesAndConverts()
    {
        var bf16 = Cut(RepoPaths.RequireSharedModel("rand-gpt-oss"), NewPath("gpt-oss-cut"));
        var (source, expected) = ToMxfp4(bf16, NewPath("gpt-oss-mxfp4"));

        // Every expert's gate, up and down loads to the values the encoder chose (gate/up from the interleaved rows).
        var model = TransformerModel.FromConfig(ModelConfig.Load(source));
        var block = model.Layers[0];
        using (var reader = CheckpointReader.Open(source))
        using (var original = CheckpointReader.Open(bf16))
        {
            block.Load(new CheckpointWeights(reader));
            var moe = (SparseMoe)block.FeedForward;
            for (int e = 0; e < moe.Experts.Count; e++)
            {
                var expert = moe.Experts[e];
                var gateUp = expected["model.layers.0.mlp.experts.gate_up_proj"];
                var down = expected["model.layers.0.mlp.experts.down_proj"];
                int hidden = expert.Gate.InFeatures;
                for (int o = 0; o < ExpertWidth; o++)
                {
                    for (int i = 0; i < hidden; i++)
                    {
                        Assert.That(expert.Gate.Weight.Data[o * hidden + i], Is.EqualTo(gateUp[((long)e * 2 * ExpertWidth + 2 * o) * hidden + i]), $"expert {e} gate ({o}, {i})");
                        Assert.That(expert.Up.Weight.Data[o * hidden + i], Is.EqualTo(gateUp[((long)e * 2 * ExpertWidth + 2 * o + 1) * hidden + i]), $"expert {e} up ({o}, {i})");
                    }
                }
                for (int o = 0; o < hidden; o++)
                {
                    for (int i = 0; i < ExpertWidth; i++)
                        Assert.That(expert.Down.Weight.Data[o * ExpertWidth + i], Is.EqualTo(down[((long)e * hidden + o) * ExpertWidth + i]), $"expert {e} down ({o}, {i})");
                }
                // The biases stay bf16 under their names; gate's are the even entries, up's the odd.
                var biases = original.ReadFloat32("model.layers.0.mlp.experts.gate_up_proj_bias");
                Assert.That(expert.Gate.Bias, Is.EqualTo(Enumerable.Range(0, ExpertWidth).Select(o => biases[e * 2 * ExpertWidth + 2 * o])));
                Assert.That(expert.Up.Bias, Is.EqualTo(Enumerable.Range(0, ExpertWidth).Select(o => biases[e * 2 * ExpertWidth + 2 * o + 1])));
            }
            // The encoding is lossy but close: each weight of expert 0's first gate block (inputs 0..31 of its column 0)
            // within half the largest E2M1 step, 2^(⌊log₂ max⌋ − 2) ≤ max/4, of the original.
            var bf16Gate = original.ReadFloat32("model.layers.0.mlp.experts.gate_up_proj");
            var firstBlock = Enumerable.Range(0, 32).Select(i => bf16Gate[i * 2 * ExpertWidth]).ToArray();
            float blockMax = firstBlock.Max(MathF.Abs);
            for (int i = 0; i < 32; i++)
                Assert.That(moe.Experts[0].Gate.Weight.Data[i], Is.EqualTo(firstBlock[i]).Within(blockMax / 4), $"gate (0, {i})");
            block.Release();
        }

        var outDir = NewPath("gpt-oss-from-mxfp4");
        var (code, _, log) = Run(ConvertArgs(source, outDir, LayoutBits));
        Assert.That(code, Is.EqualTo(0), log);
        AssertExl3Layout(source, outDir);
        using (var output = CheckpointReader.Open(outDir))
            Assert.That(output.TensorNames.Where(n => n.EndsWith("_blocks", StringComparison.Ordinal) || n.EndsWith("_scales", StringComparison.Ordinal)), Is.Empty,
                "the MXFP4 experts are quantized, not copied");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, ModelConfig.FileName)))!;
        Assert.That(config["quantization_config"]!["quant_method"]!.GetValue<string>(), Is.EqualTo("exl3"));

        double kl = EvalKl(outDir, source, $"gpt-oss (cut, MXFP4 source): {LayoutBits} bpw");
        // Measured KL 0.015; a broken routing, gate/up order or bias gives KL of order 1 or NaN.
        Assert.That(kl, Is.GreaterThan(0).And.LessThan(0.1));
        var (inspectCode, inspectJson, inspectLog) = Run("inspect", outDir, "--reference", source, "--json");
        Assert.That(inspectCode, Is.EqualTo(0), inspectLog);
        var rows = JsonNode.Parse(inspectJson)!["tensors"]!.AsArray().Where(r => r!["format"]!.GetValue<string>() == "exl3").ToList();
        Assert.That(rows, Is.Not.Empty);
        Assert.That(rows.Select(r => r!["relative_error"]!.GetValue<double>()), Has.All.InRange(0.001, 0.8),
            "each stored expert linear is compared with its own MXFP4-decoded original");
    }

    /// <summary>
    /// What exllamav3 loads: experts.E.{gate,up,down}_proj as EXL3 linears with .bias (fp16, of the expert's own
    /// entries), nothing under the fused names, router weight + bias and sinks copied byte for byte.
    /// </summary>
    private static void AssertExl3Layout(string source, string outDir)
    {
        var moe = (SparseMoe)TransformerModel.FromConfig(ModelConfig.Load(source)).Layers[0].FeedForward;
        using var output = CheckpointReader.Open(outDir);
        using var original = CheckpointReader.Open(source);
        foreach (var linear in moe.Experts.SelectMany(e => e.Linears))
        {
            Assert.That(linear.Name, Does.Match(@"^model\.layers\.0\.mlp\.experts\.\d+\.(gate|up|down)_proj$"));
            foreach (var suffix in new[] { ".trellis", ".suh", ".svh", ".bias" })
                Assert.That(output.Contains(linear.Name + suffix), linear.Name + suffix);
            Assert.That(output.Contains(TensorNames.Weight(linear.Name)), Is.False, linear.Name + " is stored quantized only");
        }
        // Expert 1's up bias is the odd entries of its row of gate_up_proj_bias (fp16 of bf16 is exact here).
        var fused = original.ReadFloat32("model.layers.0.mlp.experts.gate_up_proj_bias");
        var up = output.ReadFloat32("model.layers.0.mlp.experts.1.up_proj.bias");
        Assert.That(up.Take(ExpertWidth), Is.EqualTo(Enumerable.Range(0, ExpertWidth).Select(o => (float)(Half)fused[2 * ExpertWidth + 2 * o + 1])));
        Assert.That(output.TensorNames.Where(n => n.Contains("experts.gate_up_proj", StringComparison.Ordinal) || n.Contains("experts.down_proj", StringComparison.Ordinal)), Is.Empty);
        foreach (var tensor in new[] { "model.layers.0.mlp.router.weight", "model.layers.0.mlp.router.bias", "model.layers.0.self_attn.sinks" })
        {
            Assert.That(output.Info(tensor).DType, Is.EqualTo(original.Info(tensor).DType), tensor);
            Assert.That(output.RawBytes(tensor).SequenceEqual(original.RawBytes(tensor)), tensor + " is copied unchanged");
        }
        Assert.That(output.Contains(moe.Router.Name + ".trellis"), Is.False, "the router stays unquantized");
    }

    /// <summary>
    /// rand-gpt-oss with only layer 0 (sliding) and each expert's first <see cref="ExpertWidth"/> channels: gate and up
    /// interleave along gate_up_proj's last axis, so those are its first 2·width columns (and bias entries); down
    /// keeps its first width rows. Other tensors are copied byte for byte, the cut ones stay bf16.
    /// </summary>
    private static string Cut(string model, string copy)
    {
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(model).Select(Path.GetFileName).OfType<string>()
                     .Where(f => f != ModelConfig.FileName && !f.Contains(".safetensors", StringComparison.Ordinal)))
            File.Copy(Path.Combine(model, file), Path.Combine(copy, file));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, ModelConfig.FileName)))!.AsObject();
        config["num_hidden_layers"] = 1;
        config["layer_types"] = new JsonArray("sliding_attention");
        config["intermediate_size"] = ExpertWidth;
        File.WriteAllText(Path.Combine(copy, ModelConfig.FileName), config.ToJsonString());

        using var reader = CheckpointReader.Open(model);
        var writer = new SafetensorsWriter();
        foreach (var name in reader.TensorNames.Where(n => !n.Contains(".layers.", StringComparison.Ordinal) || n.Contains(".layers.0.", StringComparison.Ordinal)))
        {
            var shape = reader.Info(name).Shape;
            if (name.EndsWith("experts.gate_up_proj", StringComparison.Ordinal) || name.EndsWith("experts.gate_up_proj_bias", StringComparison.Ordinal)
                || name.EndsWith("experts.down_proj", StringComparison.Ordinal))
            {
                // gate_up: keep columns [0, 2·width) of every (expert, input) row; down: rows [0, width) of every expert.
                bool gateUp = !name.EndsWith("down_proj", StringComparison.Ordinal);
                var full = reader.ReadFloat32(name);
                long[] cutShape = gateUp ? [.. shape[..^1], 2 * ExpertWidth] : [shape[0], ExpertWidth, shape[2]];
                var cut = new List<float>();
                if (gateUp)
                {
                    int columns = (int)shape[^1];
                    for (int r = 0; r < full.Length / columns; r++)
                        cut.AddRange(full.AsSpan(r * columns, 2 * ExpertWidth).ToArray());
                }
                else
                {
                    int perExpert = (int)(shape[1] * shape[2]);
                    for (int e = 0; e < shape[0]; e++)
                        cut.AddRange(full.AsSpan(e * perExpert, ExpertWidth * (int)shape[2]).ToArray());
                }
                writer.AddFloat32(name, cutShape, cut.ToArray(), DType.BF16);
            }
            else
            {
                writer.Add(PendingTensor.CopyOf(reader, name, name));
            }
        }
        writer.Write(Path.Combine(copy, "model.safetensors"));
        return copy;
    }

    /// <summary>
    /// <paramref name="bf16"/> as a published gpt-oss checkpoint stores it: each expert tensor [E, in, out] transposed to
    /// [E, out, in] and encoded as MXFP4 <c>_blocks</c> [E, out, in/32, 16] and <c>_scales</c> [E, out, in/32] (biases and
    /// everything else unchanged), with quantization_config.quant_method "mxfp4". Returns the directory and, per
    /// fused tensor, the encoded values in the [E, out, in] order, computed here from the chosen codes.
    /// </summary>
    private static (string Dir, Dictionary<string, float[]> Expected) ToMxfp4(string bf16, string copy)
    {
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(bf16).Select(Path.GetFileName).OfType<string>()
                     .Where(f => f != ModelConfig.FileName && !f.Contains(".safetensors", StringComparison.Ordinal)))
            File.Copy(Path.Combine(bf16, file), Path.Combine(copy, file));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(bf16, ModelConfig.FileName)))!.AsObject();
        config["quantization_config"] = new JsonObject
        {
            ["quant_method"] = "mxfp4",
            ["modules_to_not_convert"] = new JsonArray("model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"),
        };
        File.WriteAllText(Path.Combine(copy, ModelConfig.FileName), config.ToJsonString());

        var expected = new Dictionary<string, float[]>();
        using var reader = CheckpointReader.Open(bf16);
        var writer = new SafetensorsWriter();
        foreach (var name in reader.TensorNames)
        {
            if (!name.EndsWith("experts.gate_up_proj", StringComparison.Ordinal) && !name.EndsWith("experts.down_proj", StringComparison.Ordinal))
            {
                writer.Add(PendingTensor.CopyOf(reader, name, name));
                continue;
            }
            var shape = reader.Info(name).Shape;
            int experts = (int)shape[0], inputs = (int)shape[1], outputs = (int)shape[2], groups = inputs / 32;
            var values = reader.ReadFloat32(name);
            var blocks = new byte[experts * outputs * groups * 16];
            var scales = new byte[experts * outputs * groups];
            var decoded = new float[experts * outputs * inputs];
            var block = new float[32];
            for (int e = 0; e < experts; e++)
            {
                for (int o = 0; o < outputs; o++)
                {
                    for (int g = 0; g < groups; g++)
                    {
                        for (int j = 0; j < 32; j++)
                            block[j] = values[((long)e * inputs + g * 32 + j) * outputs + o];
                        long index = ((long)e * outputs + o) * groups + g;
                        scales[index] = Mxfp4Encoder.EncodeBlock(block, blocks.AsSpan((int)index * 16, 16), decoded.AsSpan((int)(((long)e * outputs + o) * inputs + g * 32), 32));
                    }
                }
            }
            writer.AddBytes(name + "_blocks", DType.U8, [experts, outputs, groups, 16], blocks);
            writer.AddBytes(name + "_scales", DType.U8, [experts, outputs, groups], scales);
            expected[name] = decoded;
        }
        writer.Write(Path.Combine(copy, "model.safetensors"));
        return (copy, expected);
    }
}
