using Converter.Cli;
using Converter.Cli.Samples;
using Converter.Conversion.Pipeline.Allocation;
using Converter.Conversion.Samples;
using Converter.Models.Synthetic;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// `trellis measure` in several passes when its perturbed states exceed --state-memory, and resumed from the
/// checkpoint a pass leaves: the test-tiny random shape with two layers (one pass each at this budget), K = 4 (faster than 2 on the CPU),
/// uncompensated, small rows. A state is 2 × 64 tokens × 128 floats (64 KiB), a layer's seven 448 KiB; 0.0005 GiB
/// (512 KiB) holds one layer's.
/// </summary>
[NonParallelizable]
public class MeasureResumeTests
{
    private static readonly string[] Measure = ["--candidates", "4", "--compensation", "none", "--rows", "2", "--length", "64", "--cal-rows", "8", "--cal-cols", "128", "--device", "cpu"];
    private static readonly string[] TwoPasses = ["--state-memory", "0.0005"];

    private DirectoryInfo _dir = null!;
    private string _model = null!;
    private Measurement _onePass = null!;

    [OneTimeSetUp]
    public void MeasureInOnePass()
    {
        _dir = Directory.CreateTempSubdirectory("trellis-measure-resume-");
        _model = Path.Combine(_dir.FullName, "test-tiny-2layers");
        SyntheticCheckpoint.Write(_model, SyntheticShape.Presets["test-tiny"] with { Layers = 2 }, seed: 1, outliers: 2, shardBytes: 1L << 30, BuiltInSamples.Tokenizer());
        var (code, log) = Run("one.json");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), log);
        Assert.That(log, Does.Contain("one pass"));
        _onePass = Measurement.Load(Path.Combine(_dir.FullName, "one.json"));
    }

    [OneTimeTearDown]
    public void Cleanup() => _dir.Delete(recursive: true);

    [Test]
    public void AnInterruptedMeasurementResumesAfterItsLastPassToTheSameKl()
    {
        var (code, log) = Run("resumed.json", [.. TwoPasses, "--stop-after", "1"]);
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), log);
        Assert.That(log, Does.Contain("in 2 passes").And.Contain("modules 0–1, 2–4").And.Contain("stopped after pass 1 of 2"));
        Assert.That(File.Exists(Path.Combine(_dir.FullName, "resumed.json")), Is.False);

        // What fixes the numbers cannot change on resume; the memory budget can (the passes are the checkpoint's).
        (code, log) = Run("resumed.json", ["--resume", "--seed", "1"]);
        Assert.That(code, Is.EqualTo(ExitCodes.Usage), log);
        Assert.That(log, Does.Contain("--resume: seed was '0' in the interrupted measurement, now '1'"));

        (code, log) = Run("resumed.json", ["--resume"]);
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), log);
        Assert.That(log, Does.Contain("resuming at pass 2 of 2 (module 2), 7 KL measured before"));
        // Two passes measure what one does, to the bit: the same quantizations and forwards in another order.
        AssertSameKl(Measurement.Load(Path.Combine(_dir.FullName, "resumed.json")));
        Assert.That(Directory.Exists(Path.Combine(_dir.FullName, "resumed.json.work")), Is.False, "the checkpoint is removed once the file is written");
    }

    [Test]
    public void ResumingWithoutACheckpointSaysSo()
    {
        var (code, log) = Run("never.json", ["--resume"]);
        Assert.That(code, Is.EqualTo(ExitCodes.Failure), log);
        Assert.That(log, Does.Contain("never.json.work: no measurement checkpoint to resume from"));
    }

    private (int Code, string Log) Run(string output, params string[] extra)
    {
        var (cli, _, log) = CliHarness.NewCli();
        int code = cli.Invoke(["measure", _model, "-o", Path.Combine(_dir.FullName, output), .. Measure, .. extra]);
        return (code, log.ToString());
    }

    /// <summary>Every unit's KL equal to the bit.</summary>
    private void AssertSameKl(Measurement other)
    {
        Assert.That(other.Units.Select(u => u.Label), Is.EqualTo(_onePass.Units.Select(u => u.Label)));
        for (int u = 0; u < other.Units.Count; u++)
            Assert.That(other.Units[u].Kl, Is.EqualTo(_onePass.Units[u].Kl), other.Units[u].Label);
    }
}
