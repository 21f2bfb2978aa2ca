using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Converter.Conversion.Samples;
using Converter.Models.Synthetic;
using NUnit.Framework;
using static Converter.Convert.Tests.SyntheticModelFixture;

namespace Converter.Convert.Tests;

/// <summary>
/// `convert --drift-target α` end to end: where the two calibration streams agree it changes nothing, after the first
/// quantized layer it moves the targets, it is recorded, and a resume continues the original stream from its checkpoint
/// (the same model as an uninterrupted run) but refuses another α.
/// </summary>
public sealed class DriftTargetConversionTests
{
    private static readonly Lazy<string> TwoLayers = new(() =>
    {
        var dir = NewPath("two-layers");
        SyntheticCheckpoint.Write(dir, SyntheticShape.Presets["test-tiny"] with { Layers = 2 }, seed: 2, outliers: 2, shardBytes: 1L << 30, BuiltInSamples.Tokenizer());
        return dir;
    });

    /// <summary>
    /// The one-layer model with an fp16 head quantizes only layer 0, whose inputs are the same in both streams (the
    /// embedding's output, through the same original weights): the tensors are the default's to the byte.
    /// </summary>
    [Test]
    public void IdenticalStreamsGiveTheDefaultTensorsAndTheOptionIsRecorded()
    {
        var outDir = NewPath("drift-one-layer");
        var (code, _, log) = Run(ConvertArgs(ModelDir, outDir, LayoutBits, "--drift-target", "1", "--sequential", "false"));
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("convert: quantizer: drift target 1: the original model's stream is kept beside the quantized one (on the host)\n"));
        Assert.That(log, Does.Contain("drift target not needed (both streams' inputs are the same)"));
        Assert.That(log, Does.Not.Contain("drift target moved"));
        var baseline = SharedConversions.Of(ModelDir, LayoutBits, "--fast");
        Assert.That(File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(baseline, "model.safetensors"))));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "quantization_config.json")))!;
        Assert.That(config["drift_target"]!.GetValue<string>(), Is.EqualTo("1"));
        Assert.That(JsonNode.Parse(File.ReadAllText(Path.Combine(baseline, "quantization_config.json")))!["drift_target"], Is.Null, "off: not recorded");
    }

    [Test]
    public void LaterLayersMoveAndAResumeContinuesTheOriginalStream()
    {
        // The whole-block capture (--sequential false): in layer 0 both streams then agree everywhere.
        var drift = NewPath("drift-two-layers");
        var (code, _, log) = Run(ConvertArgs(TwoLayers.Value, drift, LayoutBits, "--drift-target", "1", "--sequential", "false"));
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Match(@"model\.layers\.0 MlpOutput \(mlp\.down_proj\): drift target not needed"), "layer 0: both streams agree");
        Assert.That(log, Does.Match(@"model\.layers\.1\.mlp\.down_proj: K=4 .* drift target moved [1-9]"), "layer 1: the target moved");

        // Stopped after layer 0, the checkpoint holds both streams; the resumed job must give the uninterrupted model.
        var resumed = NewPath("drift-resumed");
        (code, _, log) = Run(ConvertArgs(TwoLayers.Value, resumed, LayoutBits, "--sequential", "false", "--stop-after", "2"));
        Assert.That(code, Is.EqualTo(0), log);
        (code, _, log) = Run(ConvertArgs(TwoLayers.Value, resumed, LayoutBits, "--drift-target", "0.5", "--sequential", "false", "--resume"));
        Assert.That(code, Is.EqualTo(2), log);
        Assert.That(log, Does.Contain("drift_target was '1' in the interrupted job, now '0.5'; it cannot change on resume"));
        (code, _, log) = Run(ConvertArgs(TwoLayers.Value, resumed, LayoutBits, "--resume"));
        Assert.That(code, Is.EqualTo(2), log);
        Assert.That(log, Does.Contain("sequential_capture was not set in the interrupted job, now 'true'"));
        (code, _, log) = Run(ConvertArgs(TwoLayers.Value, resumed, LayoutBits, "--sequential", "false", "--resume"));
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("resuming at module 2"));
        Assert.That(File.ReadAllBytes(Path.Combine(resumed, "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(drift, "model.safetensors"))));
    }

    /// <summary>
    /// With <c>--sequential</c> a block is captured once per sublayer and its earlier sublayers' weights are
    /// reconstructions by the later captures: the original stream must still run the original weights. Layer 0's inputs
    /// are the same in both streams, so its error against the original model's stream is its error against its own
    /// unquantized outputs, to every printed digit; and from o_proj on, its sublayers' inputs now differ between streams.
    /// The stage stash (on by default) gives the bytes of a run that recomputes each stage.
    /// </summary>
    [Test]
    public void WithASequentialCaptureTheOriginalStreamRunsTheOriginalWeights()
    {
        var outDir = NewPath("drift-sequential");
        var (code, _, log) = Run(ConvertArgs(TwoLayers.Value, outDir, LayoutBits));
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("convert: quantizer: sequential capture; drift target 1: the original model's stream is kept beside the quantized one (on the host)"),
            "convert's default");
        var own = Regex.Match(log, @"^model\.layers\.0: rfn (\S+)", RegexOptions.Multiline);
        var against = Regex.Match(log, @"model\.layers\.0: against the original model's stream: rfn (\S+)");
        Assert.That(own.Success && against.Success, log);
        Assert.That(against.Groups[1].Value, Is.EqualTo(own.Groups[1].Value));
        Assert.That(log, Does.Match(@"model\.layers\.0 AttentionInput \(.*\): drift target not needed"), "q/k/v: both streams agree");
        Assert.That(log, Does.Match(@"model\.layers\.0\.self_attn\.o_proj: K=4 .* drift target moved [1-9]"), "o_proj sees the quantized q/k/v");
        // down_proj (fewer outputs than inputs) sums its cross term projected by its weight; gate and up the square one.
        Assert.That(log, Does.Match(@"model\.layers\.0 MlpOutput \(mlp\.down_proj\): drift target from \d+ tokens, its cross sum projected by the weights \(\d+ × \d+\) \("));
        Assert.That(log, Does.Match(@"model\.layers\.0 MlpInput \(mlp\.gate_proj, mlp\.up_proj\): drift target from \d+ tokens \("));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "quantization_config.json")))!;
        Assert.That(config["sequential_capture"]!.GetValue<string>(), Is.EqualTo("true"));

        // The same conversion recomputing every stage from the block's input (no stage stash): both streams' stages
        // then run what the stashed ones skipped, and the model must be the same to the byte.
        var recomputed = NewPath("drift-sequential-recomputed");
        (code, _, log) = Run(ConvertArgs(TwoLayers.Value, recomputed, LayoutBits, "--stage-stash", "false"));
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(File.ReadAllBytes(Path.Combine(recomputed, "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(outDir, "model.safetensors"))),
            "the stage stash changes no byte");
    }
}
