using System.Text.Json;
using Converter.Cli;
using Converter.Cli.Samples;
using Converter.Conversion.Samples;
using Converter.Formats.IO;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>`trellis eval`, `ppl` and `compare`: arguments → bound options or exit code, then small real runs.</summary>
public class EvalCommandsTests
{
    private static (TrellisCli Cli, StringWriter Out, StringWriter Err) NewCli()
    {
        var output = new StringWriter();
        var log = new StringWriter();
        return (new TrellisCli(new CliContext(output, log, interactive: false)), output, log);
    }

    [Test]
    public void EvalDefaultsAreTheSixPointOneProtocol()
    {
        var (cli, _, _) = NewCli();
        var o = cli.Eval.Bind(cli.Parse("eval", "q", "--reference", "ref"));
        Assert.That((o.QuantDir, o.ReferenceDir, o.Data.Rows, o.Data.Length, o.TopK, o.ReportPath, o.Json), Is.EqualTo(("q", "ref", 16, 256, 5, (string?)null, false)));
        Assert.That(o.Data.Text, Is.EqualTo(BuiltInSamples.EvaluationText));
    }

    [Test]
    public void EvalBindsEveryOption()
    {
        var (cli, _, _) = NewCli();
        var o = cli.Eval.Bind(cli.Parse("eval", "q", "-r", "ref", "--text", "t.txt", "--rows", "3", "--length", "64", "--topk", "10", "--report", "r.html", "--json",
            "--device", "cpu", "--gpu-math", "tf32"));
        Assert.That((o.Data, o.TopK, o.ReportPath, o.Json),
            Is.EqualTo((new Cli.Commands.Eval.EvalData(TextSource.FromFile("t.txt"), 3, 64, "cpu", Cuda.Blas.GpuMath.Tf32), 10, "r.html", true)));
    }

    [Test]
    public void PplAndCompareBind()
    {
        var (cli, _, _) = NewCli();
        var p = cli.Ppl.Bind(cli.Parse("ppl", "m", "--rows", "2", "--length", "32", "--json"));
        Assert.That((p.ModelDir, p.Text!.Rows, p.Text!.Length, p.Json), Is.EqualTo(("m", 2, 32, true)));
        Assert.That(p.Text!.Text, Is.EqualTo(BuiltInSamples.EvaluationText));

        Assert.That(p.GpuMath, Is.EqualTo(Cuda.Blas.GpuMath.Fp32), "FP32 unless asked");
        Assert.That(cli.Ppl.Bind(cli.Parse("ppl", "m", "--ids", "a.json", "--gpu-math", "tf32")).GpuMath, Is.EqualTo(Cuda.Blas.GpuMath.Tf32));

        var c = cli.Compare.Bind(cli.Parse("compare", "--reference", "ref", "a", "b", "c", "--topk", "3", "--report", "c.html", "--gpu-math", "tf32"));
        Assert.That(c.Data.GpuMath, Is.EqualTo(Cuda.Blas.GpuMath.Tf32));
        Assert.That(c.QuantDirs, Is.EqualTo(new[] { "a", "b", "c" }));
        Assert.That((c.ReferenceDir, c.TopK, c.ReportPath, c.Json, c.Data.Rows), Is.EqualTo(("ref", 3, "c.html", false, 16)));
    }

    [TestCase(new[] { "eval", "q", "-r", "ref", "--rows", "0" }, "--rows must be at least 1")]
    [TestCase(new[] { "eval", "q", "-r", "ref", "--length", "1" }, "--length must be at least 2")]
    [TestCase(new[] { "eval", "q", "-r", "ref", "--topk", "0" }, "--topk must be in 1..100")]
    [TestCase(new[] { "eval", "q", "-r", "ref", "--topk", "101" }, "--topk must be in 1..100")]
    [TestCase(new[] { "ppl", "m", "--rows", "-1" }, "--rows must be at least 1")]
    [TestCase(new[] { "compare", "-r", "ref", "a", "--length", "0" }, "--length must be at least 2")]
    [TestCase(new[] { "eval", "q", "-r", "ref", "--gpu-math", "bf16" }, "--gpu-math must be fp32 or tf32, got 'bf16'")]
    [TestCase(new[] { "ppl", "m", "--ids", "a.json", "--gpu-math", "x" }, "--gpu-math must be fp32 or tf32, got 'x'")]
    public void BadValuesExitWithUsageError(string[] args, string message)
    {
        var (cli, output, log) = NewCli();
        Assert.That(cli.Invoke(args), Is.EqualTo(ExitCodes.Usage));
        Assert.That(log.ToString(), Does.Contain(message));
        Assert.That(log.ToString().Trim().Split('\n'), Has.Length.EqualTo(1), "one line");
        Assert.That(output.ToString(), Is.Empty);
    }

    [TestCase(new[] { "eval", "q" }, "--reference")]
    [TestCase(new[] { "compare", "-r", "ref" }, "QUANT_DIR")]
    [TestCase(new[] { "ppl" }, "MODEL_DIR")]
    [TestCase(new[] { "eval", "q", "-r", "ref", "--rows", "many" }, "many")]
    public void MissingOrMalformedArgumentsAreUsageErrors(string[] args, string mentioned)
    {
        var (cli, _, log) = NewCli();
        Assert.That(cli.Invoke(args), Is.EqualTo(ExitCodes.Usage));
        Assert.That(log.ToString(), Does.Contain(mentioned));
    }

    [Test]
    public void MissingModelOrTextFailsNamingIt()
    {
        var (cli, output, log) = NewCli();
        Assert.That(cli.Invoke("ppl", "/nonexistent/model-dir"), Is.EqualTo(ExitCodes.Failure));
        Assert.That(log.ToString(), Does.Contain("/nonexistent/model-dir").And.Contain("trellis: error:"));
        Assert.That(output.ToString(), Is.Empty);

        (cli, _, log) = NewCli();
        Assert.That(cli.Invoke("ppl", RepoPaths.SampleModel, "--text", "/nonexistent/text.txt"), Is.EqualTo(ExitCodes.Failure));
        Assert.That(log.ToString(), Does.Contain("/nonexistent/text.txt"));

        (cli, _, log) = NewCli();
        Assert.That(cli.Invoke("ppl", RepoPaths.SampleModel, "--rows", "100000"), Is.EqualTo(ExitCodes.Failure));
        Assert.That(log.ToString(), Does.Contain("100000 were requested"));
    }

    [Test]
    public void PplJsonHasPerplexityRowsAndTokens()
    {
        var (cli, output, _) = NewCli();
        Assert.That(cli.Invoke("ppl", RepoPaths.SampleModel, "--rows", "2", "--length", "32", "--json"), Is.EqualTo(ExitCodes.Ok));
        using var doc = JsonDocument.Parse(output.ToString());
        var root = doc.RootElement;
        Assert.That(root.GetProperty("ppl").GetDouble(), Is.GreaterThan(1).And.LessThan(1000));
        Assert.That(root.GetProperty("rows").GetInt32(), Is.EqualTo(2));
        Assert.That(root.GetProperty("tokens").GetInt64(), Is.EqualTo(64));
        Assert.That(root.GetProperty("scored").GetInt64(), Is.EqualTo(62));
        Assert.That(root.GetProperty("quantized").GetBoolean(), Is.False);
    }

    [Test]
    public void EvalOfAModelAgainstItselfReportsNoDifferenceInJsonTableAndReport()
    {
        using var dir = new TempDirectory();
        var report = dir.File("eval.html");
        var (cli, output, _) = NewCli();
        Assert.That(cli.Invoke("eval", RepoPaths.SampleModel, "--reference", RepoPaths.SampleModel, "--rows", "2", "--length", "32", "--topk", "3",
            "--json", "--report", report), Is.EqualTo(ExitCodes.Ok));
        using var doc = JsonDocument.Parse(output.ToString());
        var root = doc.RootElement;
        string[] keys = ["ppl_a", "ppl_b", "kl_ab", "kl_ba", "kl_ab_median", "kl_ab_p90", "label_in_topk_a", "label_in_topk_b", "topk_agreement", "kl_buckets", "modules"];
        foreach (var key in keys)
            Assert.That(root.TryGetProperty(key, out _), Is.True, key);
        Assert.That(root.GetProperty("kl_ab").GetDouble(), Is.Zero);
        Assert.That(root.GetProperty("kl_ba").GetDouble(), Is.Zero);
        Assert.That(root.GetProperty("ppl_a").GetDouble(), Is.EqualTo(root.GetProperty("ppl_b").GetDouble()));
        Assert.That(root.GetProperty("topk_agreement").EnumerateArray().Select(e => e.GetDouble()), Is.EqualTo(new[] { 1.0, 1.0, 1.0 }));
        var modules = root.GetProperty("modules").EnumerateArray().ToList();
        Assert.That(modules.Select(m => m.GetProperty("name").GetString()), Is.EqualTo(new[] { "model.embed_tokens", "model.layers.0", "model.layers.1", "model.layers.2", "model.layers.3", "model.norm" }));
        foreach (var key in new[] { "rfn_err", "max_diff_norm", "sqnr", "cos_err" })
            Assert.That(modules[0].TryGetProperty(key, out _), Is.True, key);
        Assert.That(root.GetProperty("kl_buckets").EnumerateArray().Sum(b => b.GetProperty("tokens").GetInt64()), Is.EqualTo(64));

        var html = File.ReadAllText(report);
        Assert.That(html, Does.StartWith("<!DOCTYPE html>").And.Contain("<svg").And.Contain("KL(A, B) by reference top-1 probability").And.Contain("model.layers.3"));
        Assert.That(html, Does.Not.Contain("<script").And.Not.Contain(" src=").And.Not.Contain("<link"), "self-contained");

        (cli, output, _) = NewCli();
        Assert.That(cli.Invoke("eval", RepoPaths.SampleModel, "--reference", RepoPaths.SampleModel, "--rows", "1", "--length", "16"), Is.EqualTo(ExitCodes.Ok));
        Assert.That(output.ToString(), Does.Contain("top-1 agreement").And.Contain("[0.95, 1.00]").And.Contain("model.layers.0"));
    }
}
