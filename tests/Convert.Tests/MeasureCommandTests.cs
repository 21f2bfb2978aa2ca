using System.Text.Json.Nodes;
using Converter.Cli;
using Converter.Conversion.Pipeline.Allocation;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// `trellis measure` and `trellis convert --measurement` end to end on rand-llama31 cut to its first layer (its seven
/// linears are what the allocator trades bits between; a second, alike layer only doubles the time) with little
/// calibration: one per-tensor measurement at K = 1 and 2 shared by the tests (the smallest K the format has, and the
/// cheapest to encode), then a conversion at 1.5 bpw that checks the measured allocation against the uniform one. The
/// measurement leaves out the block refits (<see cref="MeasureCompensationTests"/> covers them): from Small's 512
/// tokens they would fit noise.
/// </summary>
[NonParallelizable]
public class MeasureCommandTests
{
    private static readonly string[] Small = ["--cal-rows", "8", "--cal-cols", "64", "--device", "cpu"];

    private DirectoryInfo _dir = null!;
    private string _model = null!;
    private string _measurement = null!;
    private Measurement _measured = null!;

    [OneTimeSetUp]
    public void MeasureOnce()
    {
        _dir = Directory.CreateTempSubdirectory("trellis-measure-");
        _model = LayerCut.FirstLayers(RepoPaths.TestModel("rand-llama31"), Path.Combine(_dir.FullName, "rand-llama31-1layer"), 1);
        _measurement = Path.Combine(_dir.FullName, "m.json");
        var (cli, output, log) = CliHarness.NewCli();
        int code = cli.Invoke([.. new[] { "measure", _model, "-o", _measurement, "--candidates", "1,2", "--rows", "2", "--length", "64", "--compensation", "none" }, .. Small]);
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), log.ToString());
        Assert.That(output.ToString(), Does.Contain("Measured 7 units (tensor)"));
        _measured = Measurement.Load(_measurement);
    }

    [OneTimeTearDown]
    public void Cleanup() => _dir.Delete(recursive: true);

    [Test]
    public void EveryLinearIsMeasuredAloneAtEveryCandidateAndFewerBitsCostMore()
    {
        const string Layer = "model.layers.0.";
        Assert.That(_measured.Granularity, Is.EqualTo(MeasureGranularity.Tensor));
        Assert.That(_measured.Units.Select(u => (u.Layer, u.Group, string.Join(",", u.Linears))), Is.EqualTo(new[]
        {
            (0, "attn.qkv", Layer + "self_attn.q_proj"), (0, "attn.qkv", Layer + "self_attn.k_proj"), (0, "attn.qkv", Layer + "self_attn.v_proj"),
            (0, "attn.o", Layer + "self_attn.o_proj"), (0, "mlp.gu", Layer + "mlp.gate_proj"), (0, "mlp.gu", Layer + "mlp.up_proj"), (0, "mlp.d", Layer + "mlp.down_proj"),
        }));
        Assert.That(_measured.Units.Select(u => u.Numel), Is.EqualTo(new[] { 256L * 256, 128 * 256, 128 * 256, 256 * 256, 768 * 256, 768 * 256, 256 * 768 }));
        foreach (var u in _measured.Units)
        {
            Assert.That(u.Kl.Keys, Is.EquivalentTo(new[] { 1, 2 }), u.Label);
            Assert.That(u.Kl.Values, Is.All.GreaterThan(0).And.All.LessThan(5), u.Label);
        }
        // Quantizing a linear at 1 bit hurts the output more than at 2 (per linear; noise cannot undo a 4× error ratio).
        Assert.That(_measured.Units.Count(u => u.Kl[1] > u.Kl[2]), Is.EqualTo(_measured.Units.Count));
        Assert.That(_measured.Candidates, Is.EqualTo(new[] { 1, 2 }));
    }

    [TestCase(new string[0], MeasureCompensation.Block)]
    [TestCase(new[] { "--compensation", "none" }, MeasureCompensation.None)]
    [TestCase(new[] { "--compensation", "Block" }, MeasureCompensation.Block)]
    public void CompensationIsBlockUnlessAskedFor(string[] args, MeasureCompensation expected)
    {
        var (cli, _, _) = CliHarness.NewCli();
        var (_, options) = cli.Measure.Bind(cli.Parse(["measure", _model, .. args]));
        Assert.That(options.Compensation, Is.EqualTo(expected));
    }

    [TestCase(new string[0], MeasureGranularity.Tensor)]
    [TestCase(new[] { "--granularity", "group" }, MeasureGranularity.Group)]
    [TestCase(new[] { "--granularity", "Tensor" }, MeasureGranularity.Tensor)]
    public void GranularityIsTensorUnlessAskedFor(string[] args, MeasureGranularity expected)
    {
        var (cli, _, _) = CliHarness.NewCli();
        var (_, options) = cli.Measure.Bind(cli.Parse(["measure", _model, .. args]));
        Assert.That(options.Granularity, Is.EqualTo(expected));
    }

    [TestCase("--granularity", "layer", "tensor or group")]
    [TestCase("--compensation", "layer", "block or none")]
    [TestCase("--compensation", "1", "block or none")]
    public void AnUnknownChoiceIsAParseErrorNamingTheChoices(string option, string value, string choices)
    {
        var (cli, _, log) = CliHarness.NewCli();
        int code = cli.Invoke("measure", _model, "-o", Path.Combine(_dir.FullName, "unused"), option, value);
        Assert.That(code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(log.ToString(), Does.StartWith($"trellis: {option} must be {choices}, got '{value}'"));
        Assert.That(Directory.Exists(Path.Combine(_dir.FullName, "unused")), Is.False);
    }

    [Test]
    public void ConvertWithAMeasurementShipsTheBetterAllocationAndRecordsIt()
    {
        var outDir = Path.Combine(_dir.FullName, "q");
        var (cli, _, log) = CliHarness.NewCli();
        int code = cli.Invoke([.. new[] { "convert", _model, "-o", outDir, "--bits", "1.5", "--measurement", _measurement, "--head-bits", "16" }, .. Small]);
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), log.ToString());
        var allocation = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!["quantization_config"]!["allocation"]!;
        Assert.That(allocation["measurement"]!.GetValue<string>(), Is.EqualTo("m.json"));
        var stored = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "quantization_config.json")))!["allocation"]!;
        Assert.That(stored.ToJsonString(), Is.EqualTo(allocation.ToJsonString()), "quantization_config.json records the same choice as config.json");
        double predicted = allocation["predicted_kl"]!.GetValue<double>(), uniformPredicted = allocation["uniform_predicted_kl"]!.GetValue<double>();
        Assert.That(predicted, Is.LessThanOrEqualTo(uniformPredicted), "the optimizer never predicts worse than the uniform allocation");
        Assert.That(allocation["granularity"]!.GetValue<string>(), Is.EqualTo("tensor"));
        Assert.That(log.ToString(), Does.Contain($"convert: warning: {_measurement} was measured with --compensation none, made for exllamav3's quantizer (--fast)"),
            "a measurement made for the other quantizer is named as such");
        string shipped = allocation["method"]!.GetValue<string>();
        if (allocation["held_out_kl_measured"] is { } measuredKl)
        {
            double m = measuredKl.GetValue<double>(), u = allocation["held_out_kl_uniform"]!.GetValue<double>();
            Assert.That(shipped, Is.EqualTo(m <= u ? "measured" : "uniform"), "the better of the two on held-out rows is shipped");
            Assert.That(log.ToString(), Does.Contain("held-out KL"));
        }
        else
        {
            Assert.That(shipped, Is.EqualTo("measured"), "only an allocation equal to the uniform one skips the check");
        }
        Assert.That(Directory.Exists(outDir + ".uniform-check"), Is.False, "the check's second conversion is removed");
        Assert.That(Directory.EnumerateDirectories(_dir.FullName).Select(Path.GetFileName).Where(n => n!.StartsWith("q.", StringComparison.Ordinal)), Is.Empty,
            "no work or swap folders are left behind");
    }

    [TestCase("measure", "--candidates", "0,3")]
    [TestCase("measure", "--candidates", "two")]
    [TestCase("measure", "--rows", "0")]
    [TestCase("convert", "--no-allocation-check")]
    [TestCase("convert", "--measurement", "/nonexistent/m.json")]
    public void BadOptionsAreUsageErrors(string command, params string[] args)
    {
        var (cli, _, log) = CliHarness.NewCli();
        int code = cli.Invoke([command, RepoPaths.TestModel("rand-llama31"), "-o", Path.Combine(_dir.FullName, "unused"), .. args]);
        Assert.That(code, Is.EqualTo(ExitCodes.Usage), log.ToString());
        Assert.That(log.ToString().Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(Directory.Exists(Path.Combine(_dir.FullName, "unused")), Is.False);
    }

    [Test]
    public void AMeasurementOfAnotherModelFailsBeforeAnythingIsWritten()
    {
        var outDir = Path.Combine(_dir.FullName, "other");
        // rand-qwen3 cut alike has the same shapes and layer count: only the measurement's fingerprint tells them apart.
        var other = LayerCut.FirstLayers(RepoPaths.TestModel("rand-qwen3"), Path.Combine(_dir.FullName, "rand-qwen3-1layer"), 1);
        var (cli, _, log) = CliHarness.NewCli();
        int code = cli.Invoke([.. new[] { "convert", other, "-o", outDir, "--bits", "3", "--measurement", _measurement }, .. Small]);
        Assert.That(code, Is.EqualTo(ExitCodes.Failure), log.ToString());
        Assert.That(log.ToString(), Does.Contain(_measurement + ": "));
        Assert.That(Directory.Exists(outDir) || Directory.Exists(outDir + ".work"), Is.False);
    }
}
