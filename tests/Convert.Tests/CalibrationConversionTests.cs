using System.Text.Json.Nodes;
using Converter.Conversion.Calibration;
using NUnit.Framework;
using static Converter.Convert.Tests.SyntheticModelFixture;

namespace Converter.Convert.Tests;

/// <summary>
/// The calibration options through the real CLI on the one-layer synthetic model: the built-in mix by default, its
/// record in quantization_config, trellis-convert.json and the model card; `--cal-data` JSONL rendered through the
/// model's chat template; and bad calibration data failing with one line naming the file and line, nothing written.
/// </summary>
public class CalibrationConversionTests
{
    [Test]
    public void TheDefaultMixIsRecordedWhereverTheConversionIsDescribed()
    {
        var outDir = NewPath("mix");
        var (code, _, log) = Run("convert", ModelDir, "-o", outDir, "--bits", "2", "--head-bits", "16", "--cal-rows", "8", "--cal-cols", "64", "--seed", "3", "--device", "cpu");
        Assert.That(code, Is.EqualTo(0), log);
        var expected = CalibrationRows.Record(CalibrationSource.BuiltIn, ModelDir, new CalibrationVolumeChoice(8, 64, "given"), seed: 3).ToJson();
        Assert.That(expected["categories"]!.AsObject().Select(c => c.Key), Is.EqualTo(CalibrationMix.Categories.Select(c => c.Name)));

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!["quantization_config"]!;
        Assert.That(config["calibration"]!.ToJsonString(), Is.EqualTo(expected.ToJsonString()));
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "trellis-convert.json")))!;
        Assert.That(report["calibration"]!.ToJsonString(), Is.EqualTo(expected.ToJsonString()));
        Assert.That(report["settings"]!["cal_data"]!.GetValue<string>(), Is.EqualTo("built-in " + BuiltInCalibrationSet.Label));
        // The CPU's forward is FP32: recorded in the report, and the default leaves quantization_config as it was.
        Assert.That(report["forward_math"]!.GetValue<string>(), Is.EqualTo("fp32"));
        Assert.That(config.AsObject().ContainsKey(Converter.Conversion.Pipeline.ConversionPipeline.ForwardMathConfigKey), Is.False);
        Assert.That(File.ReadAllText(Path.Combine(outDir, "README.md")), Does.Contain(
            "| calibration | 8 rows × 64 tokens of built-in trellis-cal v1 (rows: prose 3, code 1, technical 1, multilingual 1, dialogue 1, random 1; dialogue as plain), seed 3 |"));
    }

    [Test]
    public void JsonlDialoguesAreRenderedThroughTheModelsChatTemplate()
    {
        var model = CopyModel("chatml");
        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "tokenizer_config.json")))!.AsObject();
        tokenizerConfig["chat_template"] = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}";
        File.WriteAllText(Path.Combine(model, "tokenizer_config.json"), tokenizerConfig.ToJsonString());
        var data = NewPath("dialogues") + ".jsonl";
        File.WriteAllLines(data, Enumerable.Range(0, 30).Select(i =>
            $"{{\"messages\": [{{\"role\": \"user\", \"content\": \"Question {i}: what follows {i}?\"}}, {{\"role\": \"assistant\", \"content\": \"The number {i + 1} follows {i}.\"}}]}}"));
        var (code, _, log) = Run("convert", model, "-o", NewPath("chatml-out"), "--cal-data", data, "--cal-rows", "4", "--cal-cols", "64", "--stop-after", "0", "--device", "cpu");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain($"calibration 4 rows × 64 tokens of {data} (dialogue as chatml), seed 0"));
    }

    [Test]
    public void BadJsonlFailsNamingTheLineAndWritesNothing()
    {
        var data = NewPath("bad") + ".jsonl";
        File.WriteAllText(data, "{\"text\": \"fine\"}\n{\"messages\": [{\"role\": \"user\"}]}\n");
        var outDir = NewPath("bad-out");
        var (code, output, log) = Run("convert", ModelDir, "-o", outDir, "--cal-data", data, "--cal-rows", "2", "--cal-cols", "16", "--device", "cpu");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(log, Does.Contain($"{data}:2: messages[0] must be an object with string \"role\" and \"content\""));
        Assert.That(output, Is.Empty);
        Assert.That(Directory.Exists(outDir) || Directory.Exists(outDir + ".work"), Is.False, "nothing written");
    }

    [Test]
    public void CalDataAndCalTextTogetherAreAUsageError()
    {
        var (code, _, log) = Run("convert", ModelDir, "--cal-data", "a.txt", "--cal-text", "b.txt");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(log, Does.Contain("--cal-data and --cal-text both name calibration data"));
    }
}
