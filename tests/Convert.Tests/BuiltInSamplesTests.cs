using System.Diagnostics;
using Converter.Cli.Samples;
using Converter.Conversion.Samples;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// The defaults built into trellis.dll (calibration text, evaluation text, the tokenizer synth writes): the same bytes
/// as samples/, and read from the assembly, so the CLI works where no clone of the repository is in sight.
/// </summary>
public class BuiltInSamplesTests
{
    [Test]
    public void TheBuiltInFilesAreTheSamples()
    {
        Assert.That(BuiltInSamples.CalibrationText.ReadAll("calibration text"), Is.EqualTo(File.ReadAllText(Path.Combine(RepoPaths.Samples, "data", "calibration.txt"))));
        Assert.That(BuiltInSamples.EvaluationText.ReadAll("evaluation text"), Is.EqualTo(File.ReadAllText(Path.Combine(RepoPaths.Samples, "data", "eval-heldout.txt"))));
        var tokenizer = BuiltInSamples.Tokenizer();
        Assert.That(tokenizer.Keys, Is.EquivalentTo(new[] { "tokenizer.json", "tokenizer_config.json" }));
        foreach (var (file, bytes) in tokenizer)
            Assert.That(bytes, Is.EqualTo(File.ReadAllBytes(Path.Combine(RepoPaths.SampleModel, file))), file);
        Assert.That(BuiltInSamples.CalibrationText.Name, Is.EqualTo("built-in samples/data/calibration.txt"));
    }

    /// <summary>
    /// The CLI as an installed tool sees the world: trellis.dll and its dependencies copied to a folder outside any
    /// clone and run from another, so neither the working directory nor the executable's has a samples/ folder above
    /// it. synth (tokenizer), convert (calibration text) and eval (evaluation text) must work with their defaults, and
    /// only the default model, which is not built in, is missing.
    /// </summary>
    [Test]
    public void DefaultsWorkOutsideAClone()
    {
        using var app = new TempDirectory("trellis-app-");
        using var cwd = new TempDirectory("trellis-cwd-");
        Assert.That(SamplesAbove(app.Path) ?? SamplesAbove(cwd.Path), Is.Null, "the temp folder must lie outside any clone for this test to mean anything");
        var built = AppContext.BaseDirectory;
        foreach (var file in Directory.GetFiles(built, "*.dll").Concat(new[] { "trellis.runtimeconfig.json", "trellis.deps.json" }.Select(f => Path.Combine(built, f))))
            File.Copy(file, Path.Combine(app.Path, Path.GetFileName(file)));

        var (code, log) = Trellis(app.Path, cwd.Path, "synth", "--shape", "test-tiny", "-o", "model");
        Assert.That(code, Is.EqualTo(0), log);
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
            Assert.That(File.ReadAllBytes(cwd.File(Path.Combine("model", file))), Is.EqualTo(File.ReadAllBytes(Path.Combine(RepoPaths.SampleModel, file))), file);

        (code, log) = Trellis(app.Path, cwd.Path, "convert", "model", "-o", "quantized", "--bits", "2", "--head-bits", "16", "--cal-rows", "4", "--cal-cols", "64", "--device", "cpu");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("tokens of built-in trellis-cal v1"));
        Assert.That(File.ReadAllText(cwd.File(Path.Combine("quantized", "README.md"))), Does.Contain("4 rows × 64 tokens of built-in trellis-cal v1 (rows: prose 1, code 1"));

        (code, log) = Trellis(app.Path, cwd.Path, "eval", "quantized", "--reference", "model", "--rows", "1", "--length", "32", "--device", "cpu", "--json");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("tokens of built-in samples/data/eval-heldout.txt"));

        (code, log) = Trellis(app.Path, cwd.Path, "convert");
        Assert.That(code, Is.EqualTo(2), log);
        Assert.That(log, Does.Contain("no MODEL_DIR given, and the sample model (samples/tiny-llama of a clone of the repository) was not found"));
    }

    private static string? SamplesAbove(string start)
    {
        for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
        {
            if (Directory.Exists(Path.Combine(dir.FullName, "samples")))
                return dir.FullName;
        }
        return null;
    }

    /// <summary>Runs <c>dotnet APP/trellis.dll ARGS</c> in <paramref name="cwd"/>; returns the exit code and stdout + stderr.</summary>
    private static (int Code, string Log) Trellis(string app, string cwd, params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = cwd,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(app, "trellis.dll"));
        foreach (var a in args)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"trellis {string.Join(' ', args)} did not finish in 3 minutes");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
