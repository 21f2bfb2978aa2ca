using System.Text.Json.Nodes;
using Converter.Compute;
using Converter.Conversion.Pipeline;
using Converter.Cuda;
using NUnit.Framework;
using static Converter.Convert.Tests.SyntheticModelFixture;

namespace Converter.Convert.Tests;

/// <summary>
/// --device on machines without a usable GPU (CI): auto falls back to the CPU and says why, an explicit cuda:N is a
/// clear one-line error (exit 1) before anything is written. With a GPU present these cases do not apply.
/// </summary>
[NonParallelizable]
public class DeviceSelectionTests
{
    private static string? WhyNoGpu()
    {
        var devices = CudaDevice.Discover(out var whyNone);
        return devices.Count == 0 ? whyNone : null;
    }

    [Test]
    public void AutoFallsBackToCpuAndSaysWhy()
    {
        var why = WhyNoGpu();
        if (why is null)
            Assert.Ignore("a GPU is present");
        using var backend = ComputeBackend.Open("auto");
        Assert.That(backend.Cuda, Is.Null);
        Assert.That(backend.Algebra, Is.SameAs(CpuDenseAlgebra.Instance));
        Assert.That(backend.Description, Is.EqualTo($"cpu ({why})"));
    }

    [Test]
    public void ExplicitGpuWithoutOneIsAOneLineError()
    {
        var why = WhyNoGpu();
        if (why is null)
            Assert.Ignore("a GPU is present");
        string outDir = NewPath("device");
        var (code, output, log) = Run(ConvertArgs(ModelDir, outDir, 4, "--device", "cuda:0"));
        Assert.That(code, Is.EqualTo(1), log);
        var lines = log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("trellis:", StringComparison.Ordinal)).ToList();
        Assert.That(lines, Is.EqualTo(new[] { $"trellis: error: --device cuda:0: {why}" }));
        Assert.That(output, Is.Empty);
        Assert.That(Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any(), Is.False, "nothing was written");
    }

    [TestCase("ppl")]
    [TestCase("eval")]
    public void EvalCommandsRefuseAMissingGpu(string command)
    {
        var why = WhyNoGpu();
        if (why is null)
            Assert.Ignore("a GPU is present");
        string[] args = command == "ppl" ? ["ppl", ModelDir, "--device", "cuda:0"] : ["eval", ModelDir, "--reference", ModelDir, "--device", "cuda:0"];
        var (code, output, log) = Run(args);
        Assert.That(code, Is.EqualTo(1), log);
        Assert.That(log, Does.Contain($"trellis: error: --device cuda:0: {why}"));
        Assert.That(output, Is.Empty);
    }

    [Test]
    public void EncoderBenchOnCpuPrintsATableAndWritesJson()
    {
        string json = NewPath("bench") + ".json";
        var (code, output, log) = Run("bench", "encoder", "--device", "cpu", "--bits", "2,4", "--cpu-tiles", "4", "--tiles", "4", "--json", json);
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(output, Does.Contain("CPU tiles/s"));
        var rows = JsonNode.Parse(File.ReadAllText(json))!["rows"]!.AsArray();
        Assert.That(rows.Select(r => (int)r!["bits"]!), Is.EqualTo(new[] { 2, 4 }));
        // Distortion of N(0,1) at K bits (DESIGN.md's ranges, loose for 4 tiles): ~0.068 at K = 2, ~0.0047 at K = 4.
        Assert.That((double)rows[0]!["cpu_mse"]!, Is.InRange(0.05, 0.09));
        Assert.That((double)rows[1]!["cpu_mse"]!, Is.InRange(0.003, 0.0065));
        Assert.That(rows[1]!["gpu_tiles_per_second"], Is.Null);
    }

    /// <summary>The forward benchmark measures the GPU forward only: without a GPU it says so and exits 1, writing nothing.</summary>
    [Test]
    public void ForwardBenchWithoutAGpuIsAOneLineError()
    {
        var why = WhyNoGpu();
        if (why is null)
            Assert.Ignore("a GPU is present");
        string json = NewPath("bench-forward") + ".json";
        var (code, output, log) = Run("bench", "forward", "--shape", "small", "--rows", "1", "--tokens", "8", "--json", json);
        Assert.That(code, Is.EqualTo(1), log);
        Assert.That(log, Does.Contain("trellis: error: bench forward measures the GPU forward and needs a GPU; cpu ("));
        Assert.That(output, Is.Empty);
        Assert.That(File.Exists(json), Is.False);
    }

    [TestCase("--variants", "fp16:fused", "--variants: 'fp16:fused' is not MATH:ATTENTION")]
    [TestCase("--variants", "tf32", "--variants: 'tf32' is not MATH:ATTENTION")]
    [TestCase("--variants", ",", "--variants names no variant")]
    [TestCase("--shape", "llama-4", "--shape must be llama-3-8b or small, got 'llama-4'")]
    [TestCase("--rows", "0", "--rows and --tokens must be at least 1")]
    [TestCase("--device", "tpu", "--device must be")]
    public void ForwardBenchRefusesBadValues(string option, string value, string message)
    {
        var (code, output, log) = Run("bench", "forward", option, value);
        Assert.That(code, Is.EqualTo(2), log);
        Assert.That(log, Does.Contain(message));
        Assert.That(output, Is.Empty);
    }
}
