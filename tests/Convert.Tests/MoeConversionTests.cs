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
/// Mixtral and Qwen3-MoE convert through the CLI (<see cref="SyntheticModelFixture.LayoutBits"/>, small calibration, fp16 head) into the names exllamav3's
/// architectures load: every routed expert's gate, up and down as its own EXL3 linear, the router's gate.weight (and
/// a sigmoid router's correction bias) copied unquantized; and they evaluate against their originals. The fixtures
/// are ../shared's random models cut to one sparse layer and Mixtral's experts to 128 intermediate channels
/// (Qwen3-MoE's width): the encoder's time grows with the weights quantized (the two cases took 220 s of CPU with
/// Mixtral's 384 channels, 122 s so cut, the whole models 390 s), and neither more layers nor wider experts would
/// test anything new here (the forward tests run the whole models). GLM-4.5's conversion differs only in its shared
/// expert and correction bias, which the model tests cover, so it is left out for time (about 60 s of CPU more).
/// Skipped without ../shared.
/// </summary>
[NonParallelizable]
public class MoeConversionTests
{
    private const int ExpertWidth = 128;

    [TestCase("rand-mixtral", 0, "model.layers.0.block_sparse_moe.experts.3.w2", "intermediate_size")]
    [TestCase("rand-qwen3-moe", 0, "model.layers.0.mlp.experts.3.down_proj", "moe_intermediate_size")]
    public void ConvertsEveryExpertAndKeepsTheRouter(string fixture, int layer, string lastDown, string expertWidthKey)
    {
        var source = Cut(RepoPaths.RequireSharedModel(fixture), NewPath(fixture + "-cut"), layer, expertWidthKey);
        var outDir = NewPath(fixture);
        var (code, _, log) = Run(ConvertArgs(source, outDir, LayoutBits));
        Assert.That(code, Is.EqualTo(0), log);

        var moe = (SparseMoe)TransformerModel.FromConfig(ModelConfig.Load(source)).Layers[0].FeedForward;
        var experts = moe.Experts.Append(moe.Shared).OfType<GatedMlp>().SelectMany(e => e.Linears).Select(l => l.Name).ToList();
        Assert.That(experts, Does.Contain(lastDown), "the names exllamav3's architecture file builds");
        using (var output = CheckpointReader.Open(outDir))
        using (var original = CheckpointReader.Open(source))
        {
            foreach (var name in experts)
            {
                Assert.That(output.Contains(name + ".trellis") && output.Contains(name + ".suh") && output.Contains(name + ".svh"), name);
                Assert.That(output.Contains(TensorNames.Weight(name)), Is.False, name + " is stored quantized only");
            }
            Assert.That(output.Contains(moe.Router.Name + ".trellis"), Is.False, "the router stays unquantized");
            // The router's weight and, for sigmoid routing, its correction bias.
            foreach (var tensor in moe.OtherTensors)
            {
                Assert.That(output.Info(tensor).DType, Is.EqualTo(original.Info(tensor).DType), tensor);
                Assert.That(output.RawBytes(tensor).SequenceEqual(original.RawBytes(tensor)), tensor + " is copied unchanged");
            }
        }

        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "trellis-convert.json")))!;
        var records = report["tensors"]!.AsArray().ToDictionary(t => t!["name"]!.GetValue<string>());
        foreach (var name in experts)
        {
            Assert.That(records[name]!["bits"]!.GetValue<int>(), Is.EqualTo(LayoutBits), name);
            // Calibration ran every expert on every token, so no expert's Hessian was empty.
            Assert.That(records[name]!["fallback"], Is.Null, name);
        }

        double kl = EvalKl(outDir, source, $"{fixture} (cut): {LayoutBits} bpw");
        // Measured as cut at 4 bpw: KL 0.012 (Mixtral) and 0.020 (Qwen3-MoE); a broken routing or layout gives KL of
        // order 1 or NaN.
        Assert.That(kl, Is.GreaterThan(0).And.LessThan(0.1));
    }

    /// <summary>
    /// A copy of <paramref name="model"/> with only decoder layer <paramref name="layer"/>, as layer 0 and sparse, and
    /// its experts' first <see cref="ExpertWidth"/> intermediate channels (gate and up rows, down columns;
    /// <paramref name="expertWidthKey"/> says so in config.json). The other tensors are copied byte for byte, the cut
    /// ones stay bf16 (their values are), the other files as they are.
    /// </summary>
    internal static string Cut(string model, string copy, int layer, string expertWidthKey)
    {
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(model).Select(Path.GetFileName).OfType<string>()
                     .Where(f => f != ModelConfig.FileName && !f.Contains(".safetensors", StringComparison.Ordinal)))
            File.Copy(Path.Combine(model, file), Path.Combine(copy, file));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, ModelConfig.FileName)))!.AsObject();
        var moe = (SparseMoe)TransformerModel.FromConfig(ModelConfig.Load(model)).Layers[layer].FeedForward;
        config["num_hidden_layers"] = 1;
        if (config.ContainsKey("first_k_dense_replace"))
            config["first_k_dense_replace"] = 0;
        config[expertWidthKey] = ExpertWidth;
        File.WriteAllText(Path.Combine(copy, ModelConfig.FileName), config.ToJsonString());

        var inputs = moe.Experts.SelectMany(e => new[] { e.Gate, e.Up }).ToDictionary(l => l.WeightTensor);
        var outputs = moe.Experts.Select(e => e.Down).ToDictionary(l => l.WeightTensor);
        using var reader = CheckpointReader.Open(model);
        var writer = new SafetensorsWriter();
        string kept = $".layers.{layer}.";
        foreach (var name in reader.TensorNames.Where(n => !n.Contains(".layers.", StringComparison.Ordinal) || n.Contains(kept, StringComparison.Ordinal)))
        {
            string renamed = name.Replace(kept, ".layers.0.", StringComparison.Ordinal);
            if (inputs.TryGetValue(name, out var input))
            {
                writer.AddFloat32(renamed, [ExpertWidth, input.InFeatures], reader.ReadFloat32(name).AsSpan(0, ExpertWidth * input.InFeatures).ToArray(), DType.BF16);
            }
            else if (outputs.TryGetValue(name, out var output))
            {
                var full = reader.ReadFloat32(name);
                var cut = new float[output.OutFeatures * ExpertWidth];
                for (int r = 0; r < output.OutFeatures; r++)
                    full.AsSpan(r * output.InFeatures, ExpertWidth).CopyTo(cut.AsSpan(r * ExpertWidth));
                writer.AddFloat32(renamed, [output.OutFeatures, ExpertWidth], cut, DType.BF16);
            }
            else
            {
                writer.Add(PendingTensor.CopyOf(reader, name, renamed));
            }
        }
        writer.Write(Path.Combine(copy, "model.safetensors"));
        return copy;
    }
}
