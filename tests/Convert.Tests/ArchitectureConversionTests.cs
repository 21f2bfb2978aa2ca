using System.Text.Json.Nodes;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.TestSupport;
using NUnit.Framework;
using static Converter.Convert.Tests.SyntheticModelFixture;

namespace Converter.Convert.Tests;

/// <summary>
/// Every architecture beyond the Llama family converts through the CLI (<see cref="SyntheticModelFixture.LayoutBits"/>, small calibration, fp16 head), writes
/// the names exllamav3 reads (fused sources split into q/k/v and gate/up, norms in their source dtype and values), and
/// evaluates against its original. The fixtures are ../shared's random models, each cut to one layer of every kind it
/// has (<see cref="LayerCut"/>: Gemma 2/3's and OLMo 3's sliding and full attention, SmolLM3's RoPE and NoPE layers;
/// one layer where all are alike): a conversion's time is its weights', and a second layer of a kind converted already
/// tests nothing new here (the forward tests run the whole models). A Gemma3ForConditionalGeneration checkpoint
/// (rand-gemma3's first layer wrapped by <see cref="Gemma3MultimodalFixture"/>, in the hub layout and in transformers
/// ≥ 4.52's; the layer kinds are the text model's, converted above) is written in the hub layout with its vision tower,
/// projector and preprocessor_config.json copied byte for byte, and eval and inspect read it back against the
/// original. Skipped without ../shared.
/// </summary>
[NonParallelizable]
public class ArchitectureConversionTests
{
    /// <summary>Each fixture and the layers kept: 2 where the first two are of different kinds (rand-smollm3 has 4: RoPE, NoPE, RoPE, NoPE).</summary>
    private static readonly object[] Fixtures =
    [
        new object[] { "rand-gemma2", 2 }, new object[] { "rand-gemma3", 2 }, new object[] { "rand-phi3", 1 }, new object[] { "rand-glm4", 1 },
        new object[] { "rand-olmo3", 2 }, new object[] { "rand-smollm3", 2 }, new object[] { "rand-cohere", 1 },
    ];

    [TestCaseSource(nameof(Fixtures))]
    public void ConvertsAndEvaluates(string fixture, int layers)
    {
        var source = Cut(RepoPaths.RequireSharedModel(fixture), fixture, layers);
        var outDir = NewPath(fixture);
        var (code, _, log) = Run(ConvertArgs(source, outDir, LayoutBits));
        Assert.That(code, Is.EqualTo(0), log);

        var model = TransformerModel.FromConfig(ModelConfig.Load(source));
        using (var output = CheckpointReader.Open(outDir))
        using (var original = CheckpointReader.Open(source))
        {
            foreach (var linear in model.Layers.SelectMany(l => l.Linears))
            {
                Assert.That(output.Contains(linear.Name + ".trellis"), linear.Name);
                if (linear.BiasTensor is { } bias)
                    Assert.That(output.Info(bias).DType, Is.EqualTo(DType.F16), "exllamav3 adds only fp16 biases to EXL3 linears");
            }
            Assert.That(output.TensorNames.Where(n => n.Contains("qkv_proj") || n.Contains("gate_up_proj")), Is.Empty, "fused sources are written split");
            var norms = model.Modules.SelectMany(m => m.TensorNames).Where(n => n.Contains("norm", StringComparison.Ordinal)).ToList();
            Assert.That(norms, Is.Not.Empty);
            foreach (var norm in norms)
            {
                Assert.That(output.Info(norm).DType, Is.EqualTo(original.Info(norm).DType), norm);
                Assert.That(output.RawBytes(norm).SequenceEqual(original.RawBytes(norm)), norm + " is copied unchanged (Gemma's 1 + w is the loader's)");
            }
        }

        // inspect finds each original weight through the architecture: slices of fused tensors, the tied head.
        var (inspectCode, inspectJson, inspectLog) = Run("inspect", outDir, "--reference", source, "--json");
        Assert.That(inspectCode, Is.EqualTo(0), inspectLog);
        var errors = JsonNode.Parse(inspectJson)!["tensors"]!.AsArray().Where(t => t!["format"]!.GetValue<string>() == "exl3")
            .Select(t => t!["relative_error"]!.GetValue<double>()).ToList();
        Assert.That(errors, Has.Count.EqualTo(model.Layers.Sum(l => l.Linears.Count())), "every decoder linear (the head stays fp16 here)");
        // 4 bpw: ‖W − Ŵ‖/‖W‖ ≈ 0.1 (distortion 0.0047 raised by LDLQ); a wrong slice or transposition gives ≥ 1.
        Assert.That(errors, Has.All.InRange(0.01, 0.4));

        double kl = EvalKl(outDir, source, $"{fixture}: {LayoutBits} bpw");
        // Random weights at 4 bpw, as cut here: measured KL 0.0003-0.018 (rand-cohere 0.0003, rand-glm4 0.007, rand-gemma2 0.009 …
        // rand-smollm3 0.018); a broken forward or layout gives KL of order 1 or NaN.
        Assert.That(kl, Is.GreaterThan(0).And.LessThan(0.1));
    }

    /// <summary>
    /// The hub layout with an fp16 head (fast); the saved layout with the tied head quantized, so the head's EXL3 tensors
    /// are renamed too: at 4 bits, the CPU encoder's fastest K (the 262k-row head at 6 bits made this the suite's
    /// second-longest test, 45 s on 2 busy cores).
    /// </summary>
    [TestCase(Gemma3Layout.Hub, "16")]
    [TestCase(Gemma3Layout.Saved, "4")]
    public void ConvertsToTheHubLayoutAndEvaluates(Gemma3Layout layout, string headBits)
    {
        var textModel = Cut(RepoPaths.RequireSharedModel("rand-gemma3"), "rand-gemma3", 1);
        var source = NewPath("gemma3-cg-" + layout);
        Gemma3MultimodalFixture.Write(textModel, source, layout);
        var outDir = NewPath("gemma3-cg-" + layout + "-out");
        var args = ConvertArgs(source, outDir, LayoutBits, "--json");
        args[Array.IndexOf(args, "--head-bits") + 1] = headBits;
        var (code, json, log) = Run(args);
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("copying 2 tensor(s) that no module reads unchanged"));
        Assert.That(JsonNode.Parse(json)!["copied_tensors"]!.GetValue<int>(), Is.EqualTo(2));

        var hub = TransformerModel.FromConfig(ModelConfig.Load(outDir));
        Assert.That((hub.Spec.Names.Model, hub.Spec.Names.LmHead), Is.EqualTo(Gemma3MultimodalFixture.TextNames(Gemma3Layout.Hub)), "the output is read in the hub layout");
        var (sourceModel, _) = Gemma3MultimodalFixture.TextNames(layout);
        using (var output = CheckpointReader.Open(outDir))
        using (var original = CheckpointReader.Open(source))
        {
            Assert.That(output.TensorNames.Where(n => !n.StartsWith("language_model.", StringComparison.Ordinal)),
                Is.EquivalentTo(new[] { Gemma3MultimodalFixture.VisionTensor(Gemma3Layout.Hub), Gemma3MultimodalFixture.ProjectorTensor(Gemma3Layout.Hub) }));
            foreach (var linear in hub.Layers.SelectMany(l => l.Linears))
                Assert.That(output.Contains(linear.Name + ".trellis"), linear.Name);
            Assert.That(output.Contains(headBits == "16" ? "language_model.lm_head.weight" : "language_model.lm_head.trellis"), "the head is written under exllamav3's name");
            if (headBits == "16")
                Assert.That(output.Info("language_model.lm_head.weight").DType, Is.EqualTo(DType.F16), "the fp16 head is ours, not the source's tied bf16 copy");

            foreach (var (copied, from) in new[]
            {
                (Gemma3MultimodalFixture.VisionTensor(Gemma3Layout.Hub), Gemma3MultimodalFixture.VisionTensor(layout)),
                (Gemma3MultimodalFixture.ProjectorTensor(Gemma3Layout.Hub), Gemma3MultimodalFixture.ProjectorTensor(layout)),
                ("language_model.model.embed_tokens.weight", sourceModel + ".embed_tokens.weight"),
                ("language_model.model.layers.0.self_attn.q_norm.weight", sourceModel + ".layers.0.self_attn.q_norm.weight"),
                ("language_model.model.norm.weight", sourceModel + ".norm.weight"),
            })
            {
                Assert.That(output.Info(copied).DType, Is.EqualTo(original.Info(from).DType), copied);
                Assert.That(output.RawBytes(copied).SequenceEqual(original.RawBytes(from)), copied + " is copied unchanged");
            }
        }

        Assert.That(File.ReadAllBytes(Path.Combine(outDir, Gemma3MultimodalFixture.PreprocessorConfig)),
            Is.EqualTo(File.ReadAllBytes(Path.Combine(source, Gemma3MultimodalFixture.PreprocessorConfig))));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
        Assert.That(config["layer_types"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[] { "sliding_attention" }), "the top-level layer_types exllamav3 reads is kept");
        Assert.That(config["vision_config"]!["patch_size"]!.GetValue<int>(), Is.EqualTo(16));
        var record = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "trellis-convert.json")))!;
        Assert.That(record["copied_tensors"]!.AsArray().Select(n => n!.GetValue<string>()),
            Is.EqualTo(new[] { Gemma3MultimodalFixture.VisionTensor(Gemma3Layout.Hub), Gemma3MultimodalFixture.ProjectorTensor(Gemma3Layout.Hub) }));
        Assert.That(record["tensors"]!.AsArray().Select(t => t!["name"]!.GetValue<string>()), Has.All.StartWith("language_model.model.layers.").Or.EqualTo("language_model.lm_head"));

        var (evalCode, evalJson, evalLog) = Run("eval", outDir, "--reference", source, "--rows", "2", "--length", "64", "--json");
        Assert.That(evalCode, Is.EqualTo(0), evalLog);
        double kl = JsonNode.Parse(evalJson)!["kl_ab"]!.GetValue<double>();
        TestContext.Out.WriteLine($"{layout}: {LayoutBits} bpw, head {headBits} bits: KL {kl:F5}");
        // Measured KL 0.006 (one layer, 4 bpw, either head); a broken layout or forward gives KL of order 1 or NaN.
        Assert.That(kl, Is.GreaterThan(0).And.LessThan(0.1));

        var (inspectCode, inspectJson, inspectLog) = Run("inspect", outDir, "--reference", source, "--json");
        Assert.That(inspectCode, Is.EqualTo(0), inspectLog);
        var rows = JsonNode.Parse(inspectJson)!["tensors"]!.AsArray().Where(r => r!["format"]!.GetValue<string>() == "exl3").ToList();
        Assert.That(rows, Has.Count.EqualTo(hub.Modules.Sum(m => m.Linears.Count()) - (headBits == "16" ? 1 : 0)));
        Assert.That(rows.Select(r => r!["relative_error"]!.GetValue<double>()), Has.All.InRange(0.001, 0.8),
            "each stored linear is compared with its own original weight (another weight would give about √2)");
    }

    /// <summary><paramref name="model"/>'s first <paramref name="layers"/> layers, or the model itself when that is all of them.</summary>
    private static string Cut(string model, string fixture, int layers) =>
        ModelConfig.Load(model).Json["num_hidden_layers"]!.GetValue<int>() == layers ? model : LayerCut.FirstLayers(model, NewPath(fixture + "-cut"), layers);
}
