using System.Text.Json;
using Converter.Cli;
using Converter.Trellis.Codebooks;
using NUnit.Framework;
using static Converter.Convert.Tests.CliHarness;

namespace Converter.Convert.Tests;

/// <summary>`trellis codebooks`: arguments → bound options or exit code, then small real runs.</summary>
public class CodebooksCommandTests
{
    [Test]
    public void DefaultsAreAllThreeCodebooksAtOneToFourBits()
    {
        var (cli, _, _) = NewCli();
        var options = cli.Codebooks.Bind(cli.Parse("codebooks"));
        Assert.That(options.Codebooks, Is.EqualTo(CodebookRegistry.All.Select(d => CodebookSpec.Default(d.Kind)).ToArray()));
        Assert.That(options.Bits, Is.EqualTo(new[] { 1, 2, 3, 4 }));
        Assert.That(options.Tiles, Is.EqualTo(256));
        Assert.That(options.BestScale, Is.False);
        Assert.That(options.Json, Is.False);
    }

    [Test]
    public void BindsEveryOption()
    {
        var (cli, _, _) = NewCli();
        var options = cli.Codebooks.Bind(cli.Parse("codebooks", "--codebook", "3inst, mcg:0xFF7A83E5,mul1:0xAD9A2EC5", "--bits", "2,8",
            "--tiles", "7", "--seed", "3", "--best-scale", "--json", "--plot", "p.svg", "--dump-table", "d", "--threads", "1"));
        Assert.That(options.Codebooks.Select(c => c.ToString()), Is.EqualTo(new[] { "3inst", "mcg:0xFF7A83E5", "mul1:0xAD9A2EC5" }));
        Assert.That(options.Bits, Is.EqualTo(new[] { 2, 8 }));
        Assert.That((options.Tiles, options.Seed, options.BestScale, options.Json, options.PlotPath, options.DumpTableDir, options.Threads),
            Is.EqualTo((7, 3, true, true, "p.svg", "d", 1)));
    }

    [TestCase("--codebook", "qtip", "unknown codebook 'qtip'")]
    [TestCase("--codebook", "mcg:0x1234", "even")]
    [TestCase("--codebook", "mul1:0xnothex", "malformed multiplier")]
    [TestCase("--bits", "0", "not a bit width K in 1..8")]
    [TestCase("--bits", "9", "not a bit width K in 1..8")]
    [TestCase("--bits", "two", "not a bit width K in 1..8")]
    [TestCase("--tiles", "0", "--tiles must be at least 1")]
    public void BadValuesExitWithUsageError(string option, string value, string message)
    {
        var (cli, output, log) = NewCli();
        int code = cli.Invoke("codebooks", option, value);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(log.ToString(), Does.Contain(message));
        Assert.That(log.ToString().Trim().Split('\n'), Has.Length.EqualTo(1), "one line");
        Assert.That(output.ToString(), Is.Empty);
    }

    [Test]
    public void UnknownOptionIsAUsageError()
    {
        var (cli, _, log) = NewCli();
        Assert.That(cli.Invoke("codebooks", "--frobnicate"), Is.EqualTo(2));
        Assert.That(log.ToString(), Does.Contain("--frobnicate"));
    }

    [Test]
    public void JsonRunReportsEveryFieldAndPlausibleValues()
    {
        var (cli, output, _) = NewCli();
        int code = cli.Invoke("codebooks", "--codebook", "mcg,mul1", "--bits", "2,3", "--tiles", "16", "--best-scale", "--json");
        Assert.That(code, Is.EqualTo(0));
        using var doc = JsonDocument.Parse(output.ToString());
        var results = doc.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.That(results, Has.Count.EqualTo(4));
        string[] keys = ["codebook", "multiplier", "bits", "mse", "mse_best_scale", "best_scale", "rd_bound", "lloyd_max", "rms", "mean", "min", "max"];
        foreach (var r in results)
        {
            foreach (var key in keys)
                Assert.That(r.TryGetProperty(key, out _), Is.True, key);
            int bits = r.GetProperty("bits").GetInt32();
            double mse = r.GetProperty("mse").GetDouble();
            Assert.That(mse, Is.GreaterThan(r.GetProperty("rd_bound").GetDouble()));
            Assert.That(mse, Is.LessThan(r.GetProperty("lloyd_max").GetDouble()));
            Assert.That(r.GetProperty("mse_best_scale").GetDouble(), Is.LessThanOrEqualTo(mse * 1.02));
            Assert.That(r.GetProperty("rd_bound").GetDouble(), Is.EqualTo(Math.Pow(2, -2 * bits)));
        }
        Assert.That(results[2].GetProperty("codebook").GetString(), Is.EqualTo("mul1"));
        Assert.That(results[2].GetProperty("multiplier").GetString(), Is.EqualTo("0x83DCD12D"));
        Assert.That(results[2].GetProperty("rms").GetDouble(), Is.EqualTo(1.00031207).Within(1e-7));
    }

    [Test]
    public void WritesPlotAndTableDumps()
    {
        var dir = Directory.CreateTempSubdirectory("trellis-codebooks-").FullName;
        try
        {
            var (cli, output, _) = NewCli();
            var plot = Path.Combine(dir, "cb.svg");
            int code = cli.Invoke("codebooks", "--codebook", "3inst,mul1", "--bits", "1,2", "--tiles", "4", "--plot", plot, "--dump-table", Path.Combine(dir, "tables"));
            Assert.That(code, Is.EqualTo(0));
            Assert.That(output.ToString(), Does.Contain("Lloyd-Max").And.Contain("mul1"));
            var svg = File.ReadAllText(plot);
            Assert.That(svg, Does.StartWith("<svg").And.Contain("polyline").And.Contain("mul1 0x83DCD12D"));
            var dump = File.ReadAllBytes(Path.Combine(dir, "tables", "mul1-0x83DCD12D.f16"));
            Assert.That(dump, Has.Length.EqualTo(131072));
            // State 0x0001 of MUL1 is fp16 0x3921 (docs/exl3-format.md §1.5), little-endian.
            Assert.That(BitConverter.ToUInt16(dump, 2), Is.EqualTo((ushort)0x3921));
            Assert.That(File.Exists(Path.Combine(dir, "tables", "3inst-0x05517C72.f16")), Is.True);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
