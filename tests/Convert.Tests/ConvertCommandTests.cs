using Converter.Cli;
using Converter.Conversion.Calibration;
using Converter.Conversion.Pipeline;
using Converter.Cuda.Blas;
using Converter.Cuda.Models;
using Converter.Formats.IO;
using Converter.Regularize.Quantization;
using Converter.TestSupport;
using Converter.Trellis.Codebooks;
using NUnit.Framework;
using static Converter.Convert.Tests.CliHarness;

namespace Converter.Convert.Tests;

/// <summary>`trellis convert` option binding, as a table: arguments → settings or exit code, without converting.</summary>
public class ConvertCommandTests
{
    [Test]
    public void DefaultsConvertTheSampleAtFourBits()
    {
        var previous = Directory.GetCurrentDirectory();
        Directory.SetCurrentDirectory(RepoPaths.Root);
        try
        {
            var (cli, _, _) = NewCli();
            var s = cli.Convert.Bind(cli.Parse("convert"));
            Assert.That(Path.GetFullPath(s.ModelDir), Is.EqualTo(Path.GetFullPath(RepoPaths.SampleModel)));
            Assert.That(s.CalData, Is.EqualTo(CalibrationSource.BuiltIn), "the calibration mix built into trellis.dll");
            Assert.That(s.OutDir, Is.EqualTo(Path.Combine("out", "tiny-llama-exl3-4.0bpw")));
            Assert.That(s.WorkDir, Is.EqualTo(Path.Combine("out", "tiny-llama-exl3-4.0bpw") + ".work"));
            Assert.That((s.Bits, s.HeadBits, s.CalRows, s.CalCols, s.Seed), Is.EqualTo((4.0, 6, (int?)null, (int?)null, 0)), "the calibration volume is scaled to the model when not given");
            Assert.That(s.Codebook, Is.EqualTo(CodebookSpec.Default(CodebookKind.Mul1)));
            Assert.That((s.OutScales, s.HessianBasis, s.Resume, s.Overwrite), Is.EqualTo((OutScalesMode.Always, HessianBasis.Exact, false, false)));
            Assert.That(s.ShardBytes, Is.EqualTo(8192L << 20));
            Assert.That(s.Tuning, Is.EqualTo(QuantizerTuning.Default), "the sequential drift target unless --fast or other values are asked for");
            var keys = (s with { CalRows = 128, CalCols = 512, CalVolumeRule = "given" }).FixedOnResume();
            Assert.That(keys.Keys, Has.None.Matches<string>(key => key is "scale_choice" or "refine_passes" or "refit_scales" or "damping"));
            Assert.That(keys, Does.ContainKey("drift_target").WithValue("1"));
            Assert.That(keys, Does.ContainKey("sequential_capture").WithValue("true"));
        }
        finally
        {
            Directory.SetCurrentDirectory(previous);
        }
    }

    [Test]
    public void BindsEveryOption()
    {
        var (cli, _, _) = NewCli();
        var s = cli.Convert.Bind(cli.Parse("convert", "m", "-o", "o", "--bits", "2.5", "--head-bits", "16", "--codebook", "mcg", "--multiplier", "0xFF7A83E5", "--allow-nonstandard-multiplier",
            "--cal-rows", "9", "--cal-cols", "64", "--cal-text", "t.txt", "--work-dir", "w", "--resume", "--device", "cpu", "--out-scales", "auto",
            "--hessian", "sign", "--seed", "7", "--shard-size", "100", "--overwrite", "--threads", "1", "--linears-in-flight", "2", "--checkpoint-interval", "5"));
        Assert.That(s.LinearsInFlight, Is.EqualTo(2));
        Assert.That((s.ModelDir, s.OutDir, s.WorkDir, s.CalData), Is.EqualTo(("m", "o", "w", CalibrationSource.FromText(TextSource.FromFile("t.txt")))));
        Assert.That((s.Bits, s.HeadBits, s.CalRows, s.CalCols, s.Seed, s.Threads), Is.EqualTo((2.5, 16, (int?)9, (int?)64, 7, 1)));
        Assert.That(s.Codebook.ToString(), Is.EqualTo("mcg:0xFF7A83E5"));
        Assert.That((s.OutScales, s.HessianBasis, s.Resume, s.Overwrite), Is.EqualTo((OutScalesMode.Auto, HessianBasis.SignOnly, true, true)));
        Assert.That(s.ShardBytes, Is.EqualTo(100L << 20));
        Assert.That(s.CheckpointInterval, Is.EqualTo(TimeSpan.FromSeconds(5)));
    }

    [TestCase("--bits", "0.5", "--bits must be in 1..8")]
    [TestCase("--bits", "8.5", "--bits must be in 1..8")]
    [TestCase("--head-bits", "9", "--head-bits must be 1..8 or 16")]
    [TestCase("--codebook", "qtip", "unknown codebook")]
    [TestCase("--multiplier", "0x2", "even")]
    [TestCase("--out-scales", "sometimes", "--out-scales must be")]
    [TestCase("--hessian", "full", "--hessian must be")]
    [TestCase("--linears-in-flight", "33", "--linears-in-flight must be")]
    [TestCase("--scale-choice", "grid", "--scale-choice must be")]
    [TestCase("--refine-passes", "-1", "--refine-passes must be")]
    [TestCase("--damping", "0", "--damping must be")]
    [TestCase("--drift-target", "-0.5", "--drift-target must be in [0, 2], got -0.5")]
    [TestCase("--drift-target", "3", "--drift-target must be in [0, 2], got 3")]
    [TestCase("--device", "tpu", "--device must be")]
    [TestCase("--device", "cuda:x", "--device must be")]
    [TestCase("--device", "cuda:-1", "--device must be")]
    [TestCase("--cal-rows", "0", "--cal-rows")]
    [TestCase("--gpu-math", "fp16", "--gpu-math must be fp32 or tf32, got 'fp16'")]
    [TestCase("--hessian-math", "bf16", "--hessian-math must be fp32 or tf32, got 'bf16'")]
    [TestCase("--calibration-states", "disk", "--calibration-states must be auto, gpu or host, got 'disk'")]
    [TestCase("--gpu-memory", "0", "--gpu-memory must be a positive number of GiB, got 0")]
    [TestCase("--gpu-memory", "-2.5", "--gpu-memory must be a positive number of GiB, got -2.5")]
    [TestCase("--timeline-gpu", "true", "--timeline-gpu applies only with --timeline FILE")]
    public void BadValuesExitWithUsageError(string option, string value, string message)
    {
        var (cli, output, log) = NewCli();
        var args = option == "--multiplier" ? new[] { "convert", "m", "--codebook", "mcg", option, value } : new[] { "convert", "m", option, value };
        Assert.That(cli.Invoke(args), Is.EqualTo(2));
        Assert.That(log.ToString(), Does.Contain(message));
        Assert.That(output.ToString(), Is.Empty);
    }

    [Test]
    public void BindsTheQuantizerExperimentsAndFixesThemOnResume()
    {
        var (cli, _, _) = NewCli();
        var s = cli.Convert.Bind(cli.Parse("convert", "m", "--cal-rows", "4", "--cal-cols", "64", "--scale-choice", "proxy", "--refine-passes", "2",
            "--refit-scales", "--damping", "0.01", "--drift-target", "0.5", "--sequential"));
        Assert.That(s.Tuning, Is.EqualTo(new QuantizerTuning { ScaleChoice = ScaleChoice.Proxy, RefinePasses = 2, RefitScales = true, Damping = 0.01, DriftTarget = 0.5, SequentialCapture = true }));
        var fixedSettings = s with { CalVolumeRule = "given" };
        Assert.That(fixedSettings.FixedOnResume(), Does.ContainKey("scale_choice").WithValue("proxy"));
        Assert.That(fixedSettings.FixedOnResume(), Does.ContainKey("refine_passes").WithValue("2"));
        Assert.That(fixedSettings.FixedOnResume(), Does.ContainKey("refit_scales").WithValue("true"));
        Assert.That(fixedSettings.FixedOnResume(), Does.ContainKey("damping").WithValue("0.01"));
        Assert.That(fixedSettings.FixedOnResume(), Does.ContainKey("sequential_capture").WithValue("true"));
        Assert.That(fixedSettings.FixedOnResume(), Does.ContainKey("drift_target").WithValue("0.5"));
    }

    [Test]
    public void FastIsExllamav3sQuantizerAndEachDefaultTurnsOffAlone()
    {
        var (cli, _, _) = NewCli();
        Assert.That(cli.Convert.Bind(cli.Parse("convert", "m", "--fast")).Tuning, Is.EqualTo(QuantizerTuning.Exllamav3));
        Assert.That(cli.Convert.Bind(cli.Parse("convert", "m", "--sequential", "false")).Tuning,
            Is.EqualTo(QuantizerTuning.Exllamav3 with { DriftTarget = 1 }));
        Assert.That(cli.Convert.Bind(cli.Parse("convert", "m", "--drift-target", "0")).Tuning,
            Is.EqualTo(QuantizerTuning.Exllamav3 with { SequentialCapture = true }));
        var e = Assert.Throws<UsageException>(() => cli.Convert.Bind(cli.Parse("convert", "m", "--fast", "--drift-target", "0.5")));
        Assert.That(e!.Message, Does.Contain("--fast already sets --drift-target 0 and --sequential false; drop --drift-target"));
    }

    /// <summary>
    /// --gpu-math is TF32 and --hessian-math FP32 unless asked (a default adds no resume key, so older jobs still resume);
    /// the other math binds, is fixed on resume, and reaches the backend's options (the GPU tests check what reaches cuBLAS).
    /// </summary>
    [TestCase("--gpu-math", "gpu_math", GpuMath.Tf32, GpuMath.Fp32)]
    [TestCase("--hessian-math", "hessian_math", GpuMath.Fp32, GpuMath.Tf32)]
    public void BindsAMathAndFixesTheNonDefaultOneOnResume(string option, string key, GpuMath byDefault, GpuMath other)
    {
        var (cli, _, _) = NewCli();
        Func<ConvertSettings, GpuMath> math = option == "--gpu-math" ? s => s.GpuMath : s => s.HessianMath;
        var plain = cli.Convert.Bind(cli.Parse("convert", "m", "--cal-rows", "4", "--cal-cols", "64")) with { CalVolumeRule = "given" };
        Assert.That(math(plain), Is.EqualTo(byDefault));
        Assert.That(plain.FixedOnResume(), Does.Not.ContainKey(key));
        string name = GpuForwardOptions.Name(other);
        var chosen = cli.Convert.Bind(cli.Parse("convert", "m", "--cal-rows", "4", "--cal-cols", "64", option, name.ToUpperInvariant())) with { CalVolumeRule = "given" };
        Assert.That(math(chosen), Is.EqualTo(other));
        Assert.That(chosen.FixedOnResume(), Does.ContainKey(key).WithValue(name));
        Assert.That(plain.ResumeConflict(chosen.FixedOnResume()), Is.Not.Null);
    }

    /// <summary>
    /// The drift target and capture count as chosen when any of --drift-target, --sequential or --fast is given (then a
    /// job keeps them where they do not fit the GPU); left out, they are the default's, which gives way.
    /// </summary>
    [TestCase(new string[0], false)]
    [TestCase(new[] { "--drift-target", "1" }, true)]
    [TestCase(new[] { "--sequential", "true" }, true)]
    [TestCase(new[] { "--fast" }, true)]
    [TestCase(new[] { "--damping", "0.02" }, false)]
    public void TheQuantizerIsChosenOnlyWhenItsOptionsAreGiven(string[] options, bool chosen)
    {
        var (cli, _, _) = NewCli();
        var settings = cli.Convert.Bind(cli.Parse(["convert", "m", "--cal-rows", "4", "--cal-cols", "64", .. options]));
        Assert.That(settings.QuantizerChosen, Is.EqualTo(chosen));
    }

    /// <summary>
    /// --calibration-states is auto unless asked, binds case-insensitively, and is no resume key: where the states live
    /// changes no number, so a job may continue with them elsewhere.
    /// </summary>
    [Test]
    public void BindsTheStatePlacementWithoutFixingItOnResume()
    {
        var (cli, _, _) = NewCli();
        var plain = cli.Convert.Bind(cli.Parse("convert", "m", "--cal-rows", "4", "--cal-cols", "64")) with { CalVolumeRule = "given" };
        Assert.That(plain.CalibrationStates, Is.EqualTo(StatePlacement.Auto));
        var host = cli.Convert.Bind(cli.Parse("convert", "m", "--cal-rows", "4", "--cal-cols", "64", "--calibration-states", "HOST")) with { CalVolumeRule = "given" };
        Assert.That(host.CalibrationStates, Is.EqualTo(StatePlacement.Host));
        Assert.That(host.FixedOnResume(), Is.EqualTo(plain.FixedOnResume()));
        Assert.That(cli.Convert.Bind(cli.Parse("convert", "m", "--calibration-states", "gpu")).CalibrationStates, Is.EqualTo(StatePlacement.Gpu));
        Assert.That(plain.GpuMemoryBudgetBytes, Is.Null);
        var budget = cli.Convert.Bind(cli.Parse("convert", "m", "--cal-rows", "4", "--cal-cols", "64", "--gpu-memory", "20.5")) with { CalVolumeRule = "given" };
        Assert.That(budget.GpuMemoryBudgetBytes, Is.EqualTo(41L << 29));
        Assert.That(budget.FixedOnResume(), Is.EqualTo(plain.FixedOnResume()), "a budget changes no number");
    }

    /// <summary>
    /// The one comparison resume and the confirmation's reuse share: a key that differs, a key the job lacked, and a
    /// key the job had that these settings leave out (back at its default) are each a conflict.
    /// </summary>
    [Test]
    public void ResumeConflictFindsChangedMissingAndDroppedKeys()
    {
        var (cli, _, _) = NewCli();
        var plain = cli.Convert.Bind(cli.Parse("convert", "m", "--cal-rows", "4", "--cal-cols", "64")) with { CalVolumeRule = "given" };
        var fp32 = plain with { GpuMath = GpuMath.Fp32 };
        Assert.That(plain.ResumeConflict(plain.FixedOnResume()), Is.Null);
        Assert.That(plain.ResumeConflict(fp32.FixedOnResume()), Is.EqualTo(("gpu_math", "fp32", (string?)null)));
        Assert.That(fp32.ResumeConflict(plain.FixedOnResume()), Is.EqualTo(("gpu_math", (string?)null, "fp32")));
        var changed = new Dictionary<string, string>(plain.FixedOnResume()) { ["bits"] = "3" };
        Assert.That(plain.ResumeConflict(changed), Is.EqualTo(("bits", "3", plain.FixedOnResume()["bits"])));
    }

    [TestCase("mcg", "0xFF7A83E5", "0xCBAC1FED")]
    [TestCase("mul1", "0xAD9A2EC5", "0x83DCD12D")]
    [TestCase("mul1", "12345", "0x83DCD12D")]
    public void ANonstandardMultiplierIsRefusedWithTheReason(string codebook, string multiplier, string locked)
    {
        using var dir = new TempDirectory();
        var outDir = dir.File("out");
        var (cli, output, log) = NewCli();
        Assert.That(cli.Invoke("convert", RepoPaths.SampleModel, "-o", outDir, "--codebook", codebook, "--multiplier", multiplier), Is.EqualTo(ExitCodes.Usage));
        var spec = CodebookSpec.Parse($"{codebook}:{multiplier}");
        Assert.That(log.ToString(), Does.Contain($"--multiplier {spec.MultiplierHex}: exllamav3 decodes {codebook} with its own fixed multiplier {locked}"));
        Assert.That(log.ToString(), Does.Contain("loads there without error and produces garbage"));
        Assert.That(log.ToString(), Does.Contain("pass --allow-nonstandard-multiplier to write it anyway"));
        Assert.That(output.ToString(), Is.Empty);
        Assert.That(Directory.Exists(outDir) || Directory.Exists(outDir + ".work"), Is.False, "nothing written");
    }

    [Test]
    public void TheDefaultMultiplierNeedsNoOptIn()
    {
        var (cli, _, _) = NewCli();
        var s = cli.Convert.Bind(cli.Parse("convert", "m", "--codebook", "mcg", "--multiplier", "0xcbac1fed"));
        Assert.That(s.Codebook, Is.EqualTo(CodebookSpec.Default(CodebookKind.Mcg)));
        s = cli.Convert.Bind(cli.Parse("convert", "m", "--multiplier", "0xAD9A2EC5", "--allow-nonstandard-multiplier"));
        Assert.That(s.Codebook.ToString(), Is.EqualTo("mul1:0xAD9A2EC5"));
    }
}
