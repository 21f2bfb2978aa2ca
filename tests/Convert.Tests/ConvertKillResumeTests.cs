using System.Diagnostics;
using NUnit.Framework;
using static Converter.Convert.Tests.SyntheticModelFixture;

namespace Converter.Convert.Tests;

/// <summary>Kill a real `trellis convert` process mid-run, resume it, and get the same bytes as an uninterrupted run.</summary>
[NonParallelizable]
public class ConvertKillResumeTests
{
    [Test]
    public void ResumeAfterAKillGivesTheSameModel()
    {
        // The uninterrupted run: the same settings as the shared conversion at LayoutBits, so it is that one.
        var baseline = SharedConversions.OfSyntheticModel(LayoutBits);

        var outDir = NewPath("killed");
        var cli = Path.Combine(AppContext.BaseDirectory, "trellis.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(cli);
        foreach (var a in ConvertArgs(ModelDir, outDir, LayoutBits))
            start.ArgumentList.Add(a);
        using (var process = Process.Start(start)!)
        {
            process.ErrorDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            // The first checkpoint follows the embedding; kill as soon as it exists, inside the decoder layer.
            var job = Path.Combine(outDir + ".work", "ckpt", "job.json");
            var clock = Stopwatch.StartNew();
            while (!File.Exists(job) && !process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2))
                Thread.Sleep(5);
            if (process.HasExited)
                Assert.Inconclusive("the conversion finished before it could be killed");
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        Assert.That(File.Exists(Path.Combine(outDir, "model.safetensors")), Is.False, "killed before the output was written");

        var (code, _, log) = Run(ConvertArgs(ModelDir, outDir, LayoutBits, "--resume"));
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("resuming at module"));
        ConvertPipelineTests.AssertSameModel(baseline, outDir);
    }
}
