using System.Text.Json;
using System.Text.Json.Nodes;
using Converter.Cli;
using Converter.Formats.Safetensors;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// End to end: `convert` at rising bits, then `compare` against the original: the KL divergence must fall as bits
/// rise. Conversions run once per fixture with tiny calibration. The default run uses the sample model cut to its
/// first decoder layer with an fp16 head (about 1–2 minutes on 2 cores); the full model at 2, 3, 4 and 6 bpw with
/// the 6-bit head is [Explicit] (about 12 minutes).
/// </summary>
public abstract class KlFallsAsBitsRise(int layers, int headBits, int[] bits, int rows, int length)
{
    private TempDirectory _dir = null!;
    private string _reference = null!;
    private readonly Dictionary<int, string> _converted = [];

    [OneTimeSetUp]
    public void ConvertOncePerBitWidth()
    {
        _dir = new TempDirectory("trellis-quality-");
        _reference = layers == 0 ? RepoPaths.SampleModel : TruncatedCopy(RepoPaths.SampleModel, _dir.File("reference"), layers);
        foreach (var b in bits)
        {
            var output = new StringWriter();
            var log = new StringWriter();
            var outDir = _dir.File($"q{b}");
            int code = new TrellisCli(new CliContext(output, log, interactive: false)).Invoke("convert", _reference, "-o", outDir, "--bits", b.ToString(),
                "--head-bits", headBits.ToString(), "--cal-rows", "4", "--cal-cols", "128");
            Assert.That(code, Is.EqualTo(ExitCodes.Ok), log.ToString());
            _converted[b] = outDir;
        }
    }

    [OneTimeTearDown]
    public void RemoveConversions() => _dir?.Dispose();

    [Test]
    public void KlDivergenceFallsAndAgreementRises()
    {
        var output = new StringWriter();
        var log = new StringWriter();
        string[] args = ["compare", "--reference", _reference, .. bits.Select(b => _converted[b]), "--rows", rows.ToString(), "--length", length.ToString(), "--json"];
        Assert.That(new TrellisCli(new CliContext(output, log, interactive: false)).Invoke(args), Is.EqualTo(ExitCodes.Ok), log.ToString());
        using var doc = JsonDocument.Parse(output.ToString());
        var results = doc.RootElement.GetProperty("results").EnumerateArray().ToList();
        var kl = results.Select(r => r.GetProperty("kl_ab").GetDouble()).ToList();
        var top1 = results.Select(r => r.GetProperty("topk_agreement")[0].GetDouble()).ToList();
        var configBits = results.Select(r => r.GetProperty("quantization").GetProperty("config_bits").GetDouble()).ToList();
        TestContext.Out.WriteLine(string.Join("\n", bits.Select((b, i) => $"{b} bpw: KL {kl[i]:F5}  top-1 {top1[i]:F4}")));

        Assert.That(configBits, Is.EqualTo(bits.Select(b => (double)b)));
        for (int i = 1; i < bits.Length; i++)
        {
            Assert.That(kl[i], Is.LessThan(kl[i - 1]), $"KL at {bits[i]} bpw vs {bits[i - 1]} bpw");
            Assert.That(top1[i], Is.GreaterThanOrEqualTo(top1[i - 1] - 0.01), $"top-1 agreement at {bits[i]} bpw vs {bits[i - 1]} bpw");
        }
        Assert.That(kl[^1], Is.LessThan(kl[0] / 4), "several bits more must cut KL several-fold");
    }

    /// <summary>The model with only its first <paramref name="layers"/> decoder layers (config and tensors), as a new model directory.</summary>
    private static string TruncatedCopy(string source, string target, int layers)
    {
        Directory.CreateDirectory(target);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        config["num_hidden_layers"] = layers;
        File.WriteAllText(Path.Combine(target, "config.json"), config.ToJsonString());
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(source, file), Path.Combine(target, file));
        using var reader = CheckpointReader.Open(source);
        var writer = new SafetensorsWriter();
        foreach (var name in reader.TensorNames)
        {
            bool dropped = name.StartsWith("model.layers.", StringComparison.Ordinal)
                && int.Parse(name.Split('.')[2]) >= layers;
            if (!dropped)
                writer.Add(PendingTensor.CopyOf(reader, name));
        }
        writer.Write(Path.Combine(target, "model.safetensors"));
        return target;
    }
}

/// <summary>Default run: the sample model's first layer, fp16 head, 2 → 3 → 4 bpw, evaluated on 4 rows × 128 tokens.</summary>
public sealed class KlFallsAsBitsRiseOneLayer() : KlFallsAsBitsRise(layers: 1, headBits: 16, bits: [2, 3, 4], rows: 4, length: 128);

/// <summary>The whole sample model with the 6-bit head at 2 → 3 → 4 → 6 bpw, on the §6.1 protocol's 16 rows × 256 tokens.</summary>
[Explicit("about 12 minutes on 2 cores: four full conversions")]
public sealed class KlFallsAsBitsRiseFullModel() : KlFallsAsBitsRise(layers: 0, headBits: 6, bits: [2, 3, 4, 6], rows: 16, length: 256);
