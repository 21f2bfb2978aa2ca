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
/// DeepSeek-V3 from an FP8 checkpoint, as the published one is: rand-deepseek-v3 cut to its first sparse layer
/// (latent attention + 4 experts + a shared expert, <see cref="MoeConversionTests.Cut"/>), every linear weight
/// (every projection but the router) encoded block-scaled FP8 (<see cref="Fp8Checkpoint"/>) and an MTP layer's tensors appended past
/// num_hidden_layers. The converter must read the dequantized weights, write the tensor names exllamav3's
/// deepseek_v3.py / MLAttention load (q_proj, kv_a_proj_with_mqa, o_proj quantized; kv_b_proj fp16; the latent norm
/// copied), drop the scales and the MTP layer, and evaluate against the FP8 source. Skipped without ../shared.
/// </summary>
[NonParallelizable]
public class DeepseekConversionTests
{
    private const string Layer = "model.layers.0";

    [Test]
    public void ConvertsLatentAttentionFromAnFp8Source()
    {
        var cut = MoeConversionTests.Cut(RepoPaths.RequireSharedModel("rand-deepseek-v3"), NewPath("deepseek-cut"), 1, "moe_intermediate_size");
        var source = NewPath("deepseek-fp8");
        var mtp = new Dictionary<string, float[]> { ["model.layers.1.enorm.weight"] = Enumerable.Repeat(1f, 256).ToArray() };
        var dequantized = Fp8Checkpoint.Write(cut, source, n => n.Contains("_proj", StringComparison.Ordinal) && n.EndsWith(".weight", StringComparison.Ordinal), mtp);
        Assert.That(dequantized.Keys, Does.Contain($"{Layer}.self_attn.kv_a_proj_with_mqa.weight"), "(160, 256): a partial block row");

        // What the model loads from the FP8 source is the dequantized FP8, for every encoded weight.
        var model = TransformerModel.FromConfig(ModelConfig.Load(source));
        using (var reader = SourceCheckpoint.Open(source, ModelConfig.Load(source).Json))
        {
            model.Layers[0].Load(reader);
            foreach (var linear in model.Layers[0].Linears.Append(((LatentAttention)model.Layers[0].Attention).KvB))
                Assert.That(linear.Weight.Data, Is.EqualTo(dequantized[linear.WeightTensor]), linear.Name);
            model.Layers[0].Release();
        }

        var outDir = NewPath("deepseek");
        var (code, _, log) = Run(ConvertArgs(source, outDir, LayoutBits));
        Assert.That(code, Is.EqualTo(0), log);
        using (var output = CheckpointReader.Open(outDir))
        {
            foreach (var name in new[] { "q_proj", "kv_a_proj_with_mqa", "o_proj" }.Select(n => $"{Layer}.self_attn.{n}"))
            {
                Assert.That(output.Contains(name + ".trellis") && output.Contains(name + ".suh") && output.Contains(name + ".svh"), name);
                Assert.That(output.Contains(TensorNames.Weight(name)), Is.False, name + " is stored quantized only");
            }
            // exllamav3's MLAttention reads kv_b_proj.weight as a plain tensor (it folds it into q and o).
            var kvB = $"{Layer}.self_attn.kv_b_proj.weight";
            Assert.That((output.Info(kvB).DType, output.Info(kvB).ShapeText), Is.EqualTo((DType.F16, "(512, 128)")));
            Assert.That(output.ReadFloat32(kvB), Is.EqualTo(dequantized[kvB].Select(v => (float)(Half)v).ToArray()), "the dequantized FP8, in fp16");
            Assert.That(output.Contains($"{Layer}.self_attn.kv_a_layernorm.weight"), Is.True);
            Assert.That(output.Contains($"{Layer}.mlp.experts.3.down_proj.trellis") && output.Contains($"{Layer}.mlp.shared_experts.down_proj.trellis"), Is.True);
            Assert.That(output.Contains($"{Layer}.mlp.gate.e_score_correction_bias"), Is.True);
            Assert.That(output.TensorNames.Where(n => n.EndsWith(Fp8DequantizedReader.ScaleSuffix, StringComparison.Ordinal) || n.StartsWith("model.layers.1.", StringComparison.Ordinal)),
                Is.Empty, "block scales are consumed and the MTP layer is dropped");
        }
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "trellis-convert.json")))!;
        Assert.That(report["copied_tensors"]!.AsArray(), Is.Empty);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!["quantization_config"]!;
        Assert.That(((string?)config["quant_method"], (string?)config["original_quantization_config"]?["quant_method"]), Is.EqualTo(("exl3", "fp8")));

        // inspect reads the FP8 source as its reference: every EXL3 linear's ‖W − Ŵ‖/‖W‖ against the dequantized
        // weights is a 4-bit error (about 0.1); against the raw codes (values up to 448 instead of the
        // weights' ~0.1) it would be about 1.
        var (inspectCode, inspectJson, inspectLog) = Run("inspect", outDir, "--reference", source, "--json");
        Assert.That(inspectCode, Is.EqualTo(0), inspectLog);
        var errors = JsonNode.Parse(inspectJson)!["tensors"]!.AsArray().Where(t => (string?)t!["format"] == "exl3")
            .ToDictionary(t => (string)t!["name"]!, t => (double)t!["relative_error"]!);
        Assert.That(errors.Keys, Does.Contain($"{Layer}.self_attn.kv_a_proj_with_mqa"));
        Assert.That(errors.Values, Has.All.InRange(0.01, 0.4));

        // eval reads the FP8 source as its reference: measured KL 0.021 at 4 bpw; a broken latent attention or routing gives
        // KL of order 1 or NaN.
        double kl = EvalKl(outDir, source, $"rand-deepseek-v3 (cut, FP8 source): {LayoutBits} bpw");
        Assert.That(kl, Is.GreaterThan(0).And.LessThan(0.1));
    }
}
