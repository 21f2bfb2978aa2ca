using System.Text.Json.Nodes;
using Converter.Eval.Inspection;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Trellis.Codebooks;
using NUnit.Framework;
using static Converter.Convert.Tests.SyntheticModelFixture;

namespace Converter.Convert.Tests;

/// <summary>Whole conversions of a small random model through the CLI, checked against docs/exl3-format.md §4.</summary>
[NonParallelizable]
public class ConvertPipelineTests
{
    /// <summary>The synthetic model converted at <paramref name="bits"/>, once per run and shared with other fixtures (read only).</summary>
    private static string ConvertedAt(double bits) => SharedConversions.OfSyntheticModel(bits);

    [Test]
    public void OutputFollowsTheStoredFormat()
    {
        var outDir = ConvertedAt(4);
        using var reader = CheckpointReader.Open(outDir);
        var model = TransformerModel.FromConfig(ModelConfig.Load(ModelDir));
        foreach (var linear in model.Layers.SelectMany(l => l.Linears))
        {
            int k = (linear.InFeatures + 127) / 128 * 128, n = (linear.OutFeatures + 127) / 128 * 128;
            Assert.That(reader.Info(linear.Name + ".trellis").DType, Is.EqualTo(DType.I16));
            Assert.That(reader.Info(linear.Name + ".trellis").Shape, Is.EqualTo(new long[] { k / 16, n / 16, 16 * 4 }), linear.Name);
            Assert.That(reader.Info(linear.Name + ".suh").DType, Is.EqualTo(DType.F16));
            Assert.That(reader.Info(linear.Name + ".suh").Shape, Is.EqualTo(new long[] { k }));
            Assert.That(reader.Info(linear.Name + ".svh").Shape, Is.EqualTo(new long[] { n }));
            Assert.That(reader.Info(linear.Name + ".mul1").DType, Is.EqualTo(DType.I32));
            Assert.That(reader.Info(linear.Name + ".mul1").Shape, Is.Empty, "0-dim marker");
            Assert.That(reader.ReadRaw<int>(linear.Name + ".mul1")[0], Is.EqualTo(-2082680531), "0x83DCD12D as int32 (§4.1)");
            Assert.That(reader.Contains(linear.Name + ".weight"), Is.False);
        }
        Assert.That(reader.Info("lm_head.weight").DType, Is.EqualTo(DType.F16), "--head-bits 16 keeps the head in fp16");
        Assert.That(reader.Info("lm_head.weight").Shape, Is.EqualTo(new long[] { 4096, 128 }));
        Assert.That(reader.Info("model.embed_tokens.weight").DType, Is.EqualTo(DType.BF16), "embeddings keep the source dtype");
        Assert.That(reader.Info("model.norm.weight").DType, Is.EqualTo(DType.BF16));

        var qc = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!["quantization_config"]!;
        Assert.That(qc["quant_method"]!.GetValue<string>(), Is.EqualTo("exl3"));
        Assert.That(qc["bits"]!.GetValue<double>(), Is.EqualTo(4.0));
        Assert.That(qc["head_bits"]!.GetValue<int>(), Is.EqualTo(16));
        Assert.That(qc["codebook"]!.GetValue<string>(), Is.EqualTo("mul1"));
        Assert.That(qc["calibration"]!["rows"]!.GetValue<int>(), Is.EqualTo(8));
        Assert.That(qc.AsObject().ContainsKey(NonstandardMultiplier.ConfigKey), Is.False, "the default multiplier carries no mark");
        var storage = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "quantization_config.json")))!["tensor_storage"]!;
        Assert.That(storage["model.layers.0.mlp.down_proj"]!["bits_per_weight"]!.GetValue<int>(), Is.EqualTo(4));
        Assert.That(storage["model.layers.0.mlp.down_proj"]!["mul1_multiplier"]!.GetValue<uint>(), Is.EqualTo(0x83DCD12Du));
        Assert.That(File.Exists(Path.Combine(outDir, "tokenizer.json")), Is.True);
        Assert.That(Directory.Exists(outDir + ".work"), Is.False, "work directory removed after success");
    }

    [Test]
    public void ErrorFallsAsBitsRiseAndTracksTheCodebookDistortion()
    {
        var tables = new CodebookTableCache();
        double previous = double.MaxValue;
        foreach (var (bits, distortion) in new[] { (2, 0.0685), (3, 0.0177), (4, 0.0047), (6, 0.0003) })
        {
            using var reader = CheckpointReader.Open(ConvertedAt(bits));
            using var reference = ReferenceWeights.Open(ConvertedAt(bits), ModelDir);
            var rows = ModelInspection.Inspect(reader, reference, null, tables).Where(r => r.Format == "exl3").ToList();
            double meanSq = rows.Average(r => r.RelativeError!.Value * r.RelativeError.Value);
            TestContext.Out.WriteLine($"K={bits}: mean relative error² {meanSq:E3} vs codebook distortion {distortion:E3}");
            Assert.That(meanSq, Is.LessThan(previous / 2.5), $"K={bits}");
            // LDLQ moves error where the Hessian does not look, so the weight-space error sits above the
            // codebook's distortion, but within a small factor of it.
            Assert.That(meanSq / distortion, Is.InRange(0.8, 4.0), $"K={bits}");
            previous = meanSq;

            // Output size: every trellis carries exactly K bits per padded weight (§2.6).
            foreach (var r in rows)
                Assert.That(reader.Info(r.Name + ".trellis").ByteLength * 8, Is.EqualTo((long)r.PaddedIn!.Value * r.PaddedOut!.Value * bits));
        }
    }

    [Test]
    public void FractionalTargetMixesIntegerWidths()
    {
        var outDir = ConvertedAt(2.5);
        var storage = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "quantization_config.json")))!["tensor_storage"]!.AsObject();
        var widths = storage.Where(kv => kv.Value!["bits_per_weight"] is not null).Select(kv => kv.Value!["bits_per_weight"]!.GetValue<int>()).ToList();
        // Round-robin passes may lift a small group twice while a large one cannot fit once (§5.2 step 4).
        Assert.That(widths.Distinct(), Is.SubsetOf(new[] { 2, 3, 4 }));
        Assert.That(widths, Does.Contain(2).And.Contain(3));
        double bits = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!["quantization_config"]!["bits"]!.GetValue<double>();
        Assert.That(bits, Is.InRange(2.0, 2.5));
    }

    [Test]
    public void InspectReportsEveryQuantizedTensor()
    {
        var outDir = ConvertedAt(4);
        var (code, output, log) = Run("inspect", outDir, "--reference", ModelDir, "--json");
        Assert.That(code, Is.EqualTo(0), log);
        var tensors = JsonNode.Parse(output)!["tensors"]!.AsArray();
        var q = tensors.Single(t => t!["name"]!.GetValue<string>() == "model.layers.0.self_attn.q_proj")!;
        Assert.That(q["bits"]!.GetValue<int>(), Is.EqualTo(4));
        Assert.That(q["codebook"]!.GetValue<string>(), Is.EqualTo("mul1"));
        // 128×128 at K=4, plus 16·(128+128) bits of suh/svh and the 32-bit codebook marker.
        Assert.That(q["bits_per_weight"]!.GetValue<double>(), Is.EqualTo(4 + 16.0 * 256 / 16384 + 32.0 / 16384).Within(1e-9));
        Assert.That(q["proxy_err"]!.GetValue<double>(), Is.GreaterThan(0));
        Assert.That(q["relative_error"]!.GetValue<double>(), Is.InRange(0.02, 0.2));
        Assert.That(log, Does.Not.Contain("warning"));
    }

    [Test]
    public void ConvertWritesAModelCard()
    {
        var card = File.ReadAllText(Path.Combine(ConvertedAt(4), "README.md"));
        Assert.That(card, Does.StartWith("---\nlibrary_name: exllamav3\npipeline_tag: text-generation\ntags:\n- exl3\n"));
        Assert.That(card, Does.Not.Contain("base_model"), "a random model has no Hub id");
        Assert.That(card, Does.Contain($"| source model | `{ModelDir}` |"));
        Assert.That(card, Does.Contain("| architecture | `LlamaForCausalLM` |"));
        Assert.That(card, Does.Match(@"\| bits per weight \| 4\.00 \(4\.\d{3} with the suh/svh scales\) \|"));
        Assert.That(card, Does.Contain("| head bits | 16 (fp16, not quantized) |"));
        Assert.That(card, Does.Contain("| codebook | mul1, multiplier 0x83DCD12D |"));
        Assert.That(card, Does.Contain($"| calibration | 8 rows × 64 tokens of {CalText}, seed 0 |"));
        Assert.That(card, Does.Contain($"| converter | {Conversion.Pipeline.ConversionPipeline.ConverterVersion} |"));
        var date = DateOnly.ParseExact(System.Text.RegularExpressions.Regex.Match(card, @"\| date \| (\d{4}-\d{2}-\d{2}) \|").Groups[1].Value, "yyyy-MM-dd");
        Assert.That(date.DayNumber - DateOnly.FromDateTime(DateTime.UtcNow).DayNumber, Is.InRange(-1, 0));
        Assert.That(card, Does.Not.Contain("Warning"));
        Assert.That(card, Does.Not.Contain("## Evaluation"), "convert runs no evaluation");
    }

    /// <summary>
    /// The opt-in path of a non-standard multiplier: the model is written, marked in quantization_config and its card,
    /// decodes correctly here (eval runs), and inspect and eval say that stock exllamav3 cannot decode it.
    /// </summary>
    [Test]
    public void ANonstandardMultiplierIsMarkedAndWarnedAbout()
    {
        var outDir = NewPath("nonstandard");
        var (code, _, log) = Run(ConvertArgs(ModelDir, outDir, LayoutBits, "--multiplier", "0xAD9A2EC5", "--allow-nonstandard-multiplier"));
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("convert: warning: exllamav3 decodes mul1 with its own fixed multiplier 0x83DCD12D"));

        foreach (var file in new[] { "config.json", "quantization_config.json" })
        {
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, file)))!;
            var qc = file == "config.json" ? json["quantization_config"]! : json;
            var mark = qc[NonstandardMultiplier.ConfigKey]!;
            Assert.That((mark["codebook"]!.GetValue<string>(), mark["multiplier"]!.GetValue<string>(), mark["exllamav3_multiplier"]!.GetValue<string>()),
                Is.EqualTo(("mul1", "0xAD9A2EC5", "0x83DCD12D")), file);
            Assert.That(mark["exllamav3_can_decode"]!.GetValue<bool>(), Is.False, file);
            Assert.That(qc["codebook_multiplier"]!.GetValue<string>(), Is.EqualTo("0xAD9A2EC5"), file);
        }
        using (var reader = CheckpointReader.Open(outDir))
            Assert.That(unchecked((uint)reader.ReadRaw<int>("model.layers.0.mlp.down_proj.mul1")[0]), Is.EqualTo(0xAD9A2EC5u), "the marker holds the multiplier used");
        var card = File.ReadAllText(Path.Combine(outDir, "README.md"));
        Assert.That(card, Does.Contain("**Warning: stock exllamav3 cannot decode this model.**"));
        Assert.That(card, Does.Contain("| codebook | mul1, multiplier 0xAD9A2EC5 (non-standard) |"));

        string warning = $"{outDir}: written with the non-standard mul1 multiplier 0xAD9A2EC5 (quantization_config.{NonstandardMultiplier.ConfigKey}): " +
            "stock exllamav3 cannot decode it (it decodes mul1 with its fixed multiplier 0x83DCD12D";
        (code, var output, log) = Run("inspect", outDir, "--json");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("inspect: warning: " + warning));
        Assert.That(JsonNode.Parse(output)!["tensors"], Is.Not.Null, "the warning goes to the log, the JSON stays parseable");
        (code, output, log) = Run("eval", outDir, "--reference", ModelDir, "--rows", "2", "--length", "64", "--json");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("eval: warning: " + warning));
        var quantization = JsonNode.Parse(output)!["quantization"]!;
        Assert.That(quantization["multiplier"]!.GetValue<string>(), Is.EqualTo("0xAD9A2EC5"));
        Assert.That(quantization["exllamav3_can_decode"]!.GetValue<bool>(), Is.False, "compare's \"exllamav3\" column reads this");
    }

    [Test]
    public void ResumeAfterAStopGivesTheSameModel()
    {
        var baseline = ConvertedAt(LayoutBits);
        var outDir = NewPath("resumed");
        var (code, _, log) = Run(ConvertArgs(ModelDir, outDir, LayoutBits, "--stop-after", "2"));
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("continue with --resume"));
        Assert.That(File.Exists(Path.Combine(outDir, "model.safetensors")), Is.False);
        (code, _, log) = Run(ConvertArgs(ModelDir, outDir, LayoutBits, "--resume"));
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("resuming at module 2"));
        AssertSameModel(baseline, outDir);
    }

    /// <summary>
    /// Three at once: the q/k/v group's linears start together and race for its lazily finalized Hessian. The timeline
    /// written beside it changes nothing in the output either, and places every linear's stages, in order, inside one of
    /// its module's quantize spans.
    /// </summary>
    [Test]
    public void LinearsInFlightAndATimelineGiveTheSameModel()
    {
        var outDir = NewPath("in-flight");
        var timelinePath = NewPath("timeline") + ".json";
        var (code, _, log) = Run(ConvertArgs(ModelDir, outDir, LayoutBits, "--linears-in-flight", "3", "--timeline", timelinePath));
        Assert.That(code, Is.EqualTo(0), log);
        AssertSameModel(ConvertedAt(LayoutBits), outDir);
        Assert.That(log, Does.Contain("convert: LDLQ on host, 3 linear(s) in flight"));

        using var trace = System.Text.Json.JsonDocument.Parse(File.ReadAllText(timelinePath));
        Assert.That(trace.RootElement.GetProperty("otherData").GetProperty("start_unix_s").GetDouble(),
            Is.EqualTo(DateTimeOffset.UtcNow.ToUnixTimeSeconds()).Within(600));
        // Spans only: the trace also names the GC pauses' lane (a metadata event, no times).
        var spans = trace.RootElement.GetProperty("traceEvents").EnumerateArray().Where(e => e.GetProperty("ph").GetString() == "X")
            .Select(e => (Name: e.GetProperty("name").GetString()!, Start: e.GetProperty("ts").GetDouble(), End: e.GetProperty("ts").GetDouble() + e.GetProperty("dur").GetDouble()))
            .ToList();
        string[] stages = ["drift target", "regularize", "search", "factor", "ldlq", "finish", "reconstruct", "pack"];
        var quantized = System.Text.RegularExpressions.Regex.Matches(log, @"^  (\S+): K=\d", System.Text.RegularExpressions.RegexOptions.Multiline)
            .Select(m => m.Groups[1].Value).ToList();
        Assert.That(quantized, Has.Count.GreaterThanOrEqualTo(7));
        foreach (var linear in quantized)
        {
            var mine = stages.Select(stage => spans.Single(s => s.Name == $"{linear} {stage}")).ToList();
            for (int i = 1; i < mine.Count; i++)
                Assert.That(mine[i].Start, Is.EqualTo(mine[i - 1].End).Within(2), $"{linear}: {stages[i]} follows {stages[i - 1]}");
            string module = linear.Contains('.') ? linear[..linear.LastIndexOf('.', linear.LastIndexOf('.') - 1)] : linear;
            // A sequential capture quantizes a block in one span per sublayer: the linear's stages lie inside one of them.
            var quantize = spans.Where(s => s.Name == $"{module} quantize").ToList();
            Assert.That(quantize, Is.Not.Empty, module);
            Assert.That(quantize.Any(q => mine[0].Start >= q.Start - 2 && mine[^1].End <= q.End + 2), Is.True, $"{linear} inside a quantize span of {module}");
        }
    }

    /// <summary>
    /// Two devices (cpu listed twice: two workers with half the threads each) quantize each module's linears between
    /// them; where a linear ran changes nothing in the output, and the log names each linear's device. The default's
    /// sequential stages of one linear (o_proj, down_proj) share its columns between the devices
    /// (<see cref="Regularize.Quantization.ColumnSplitSolver"/>; the others too when the measured speeds differ enough).
    /// </summary>
    [Test]
    public void LinearsSpreadOverTwoDevicesGiveTheSameModel()
    {
        var outDir = NewPath("two-devices");
        var (code, _, log) = Run(ConvertArgs(ModelDir, outDir, LayoutBits, "--device", "cpu,cpu"));
        Assert.That(code, Is.EqualTo(0), log);
        AssertSameModel(ConvertedAt(LayoutBits), outDir);
        Assert.That(log, Does.Contain("convert: devices cpu ("));
        Assert.That(log, Does.Match(@"K=\d proxy_err \S+  g \S+  on cpu"));
        foreach (var name in new[] { "o_proj", "down_proj" })
            Assert.That(log, Does.Match(name + @": K=\d .*columns shared by every device"), name);
    }

    [TestCase("cuda:0,cpu", "a list is all GPUs or all cpu")]
    [TestCase("cuda:0,cuda:0", "cuda:0 is listed twice")]
    [TestCase("auto,cuda:1", "a list names its devices")]
    [TestCase("cuda:0,,cuda:1", "a list names its devices")]
    [TestCase("cuda:0,gpu1", "--device must be auto, cpu or cuda:N, got 'gpu1'")]
    public void DeviceListsAreCheckedBeforeAnyWork(string devices, string message)
    {
        var outDir = NewPath("bad-devices");
        var (code, _, log) = Run(ConvertArgs(ModelDir, outDir, LayoutBits, "--device", devices));
        Assert.That(code, Is.EqualTo(2), log);
        Assert.That(log, Does.Contain(message));
        Assert.That(Directory.Exists(outDir), Is.False);
    }

    [Test]
    public void ResumeRefusesChangedSettings()
    {
        var outDir = NewPath("changed");
        Assert.That(Run(ConvertArgs(ModelDir, outDir, 3, "--stop-after", "1")).Code, Is.EqualTo(0));
        var (code, _, log) = Run(ConvertArgs(ModelDir, outDir, 4, "--resume"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(log, Does.Contain("bits was '3' in the interrupted job"));
    }

    /// <summary>
    /// A setting recorded only when not the default (here --gpu-math fp32, which the CPU ignores but the job records)
    /// cannot be dropped on resume either: its absence is the other value.
    /// </summary>
    [Test]
    public void ResumeRefusesASettingReturnedToItsDefault()
    {
        var outDir = NewPath("back-to-default");
        Assert.That(Run(ConvertArgs(ModelDir, outDir, 3, "--stop-after", "1", "--gpu-math", "fp32")).Code, Is.EqualTo(0));
        var (code, _, log) = Run(ConvertArgs(ModelDir, outDir, 3, "--resume"));
        Assert.That(code, Is.EqualTo(2), log);
        Assert.That(log, Does.Contain("gpu_math was 'fp32' in the interrupted job, now the default; it cannot change on resume"));
    }

    internal static void AssertSameModel(string expectedDir, string actualDir)
    {
        foreach (var file in new[] { "model.safetensors", "config.json", "quantization_config.json", "tokenizer.json" })
            Assert.That(File.ReadAllBytes(Path.Combine(actualDir, file)), Is.EqualTo(File.ReadAllBytes(Path.Combine(expectedDir, file))), file);
        Assert.That(CardWithoutDate(actualDir), Is.EqualTo(CardWithoutDate(expectedDir)), "README.md, apart from its date");
    }

    /// <summary>The model card without its date line, the one line two runs of the same conversion may differ in.</summary>
    private static string CardWithoutDate(string dir) =>
        string.Join("\n", File.ReadAllLines(Path.Combine(dir, "README.md")).Where(l => !l.StartsWith("| date |", StringComparison.Ordinal)));
}
