using System.Text.Json;
using Converter.Eval.Codebooks.Screening;
using Converter.Trellis.Codebooks;
using NUnit.Framework;
using static Converter.Convert.Tests.CliHarness;

namespace Converter.Convert.Tests;

/// <summary>`trellis codebooks --screen FILE | --random N`: option binding, bad input, and small real screens with resume.</summary>
public class CodebookScreenCommandTests
{
    private string _dir = null!;

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("trellis-screen-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void BindsAScreen()
    {
        var (cli, _, _) = NewCli();
        var options = cli.Codebooks.Bind(cli.Parse("codebooks", "--screen", "list.txt", "--random", "50", "--codebook", "mul1", "--bits", "4,2",
            "--tiles", "128", "--seed", "3", "--rank-by", "2", "--top", "5", "--out", "j.jsonl", "--device", "cpu", "--top-list", "top.txt"));
        var screen = options.Screen!;
        Assert.That((screen.Settings.Kind, screen.Settings.Tiles, screen.Settings.Seed), Is.EqualTo((CodebookKind.Mul1, 128, 3)));
        Assert.That(screen.Settings.Bits, Is.EqualTo(new[] { 2, 4 }), "K sorted, so the journal header does not depend on the order given");
        Assert.That((screen.ListPath, screen.RandomCount, screen.RandomSeed, screen.RankBy, screen.Top, screen.JournalPath, screen.Device),
            Is.EqualTo(("list.txt", 50, 3, (int?)2, 5, "j.jsonl", "cpu")));
        Assert.That(screen.TopListPath, Is.EqualTo("top.txt"));
        var plain = cli.Codebooks.Bind(cli.Parse("codebooks", "--random", "4", "--random-seed", "9"));
        Assert.That((plain.Screen!.Settings.Kind, plain.Screen.RandomSeed, plain.Screen.RankBy, plain.Screen.Device), Is.EqualTo((CodebookKind.Mcg, 9, (int?)null, "auto")));
        Assert.That(cli.Codebooks.Bind(cli.Parse("codebooks")).Screen, Is.Null);
    }

    [TestCase("--random", "4", "--codebook", "3inst", "a screen takes one family")]
    [TestCase("--random", "4", "--codebook", "mcg,mul1", "a screen takes one family")]
    [TestCase("--random", "4", "--codebook", "mcg:0xFF7A83E5", "a screen takes one family")]
    [TestCase("--random", "0", "--bits", "2", "--random must be at least 1")]
    [TestCase("--random", "4", "--tiles", "4", "--tiles must be at least 8")]
    [TestCase("--random", "4", "--bits", "2", "--rank-by", "3", "--rank-by 3 is not one of --bits")]
    [TestCase("--random", "4", "--device", "gpu", "--device must be auto, cpu or cuda:N")]
    [TestCase("--random", "4", "--best-scale", "true", "--best-scale is not part of a multiplier screen")]
    [TestCase("--bits", "2", "--out", "x.jsonl", "--out belongs to a multiplier screen")]
    public void BadScreenOptionsExitWithUsageError(params string[] args)
    {
        var (cli, output, log) = NewCli();
        int code = cli.Invoke(["codebooks", .. args[..^1]]);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(log.ToString(), Does.Contain(args[^1]));
        Assert.That(log.ToString().Trim().Split('\n'), Has.Length.EqualTo(1), "one line");
        Assert.That(output.ToString(), Is.Empty);
    }

    [Test]
    public void ABadListLineExitsOneNamingFileAndLine()
    {
        var list = Path.Combine(_dir, "list.txt");
        File.WriteAllText(list, "# candidates\n0xFF7A83E5\n0xCAF6A43\n0xZZ\n");
        var (cli, output, log) = NewCli();
        int code = cli.Invoke("codebooks", "--screen", list, "--bits", "2", "--tiles", "8", "--device", "cpu");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(log.ToString().Trim(), Is.EqualTo($"trellis: error: {list}:4: malformed multiplier '0xZZ' (expected 0x followed by up to 8 hex digits, or a decimal 32-bit value)"));
        Assert.That(output.ToString(), Is.Empty);
    }

    [Test]
    public void AResumedScreenSkipsMultipliersAlreadyInTheJournalAndRanksThemAll()
    {
        var journal = Path.Combine(_dir, "screen.jsonl");
        string[] common = ["codebooks", "--bits", "8", "--tiles", "8", "--device", "cpu", "--out", journal, "--json"];
        var (cli, output, log) = NewCli();
        Assert.That(cli.Invoke([.. common, "--random", "2"]), Is.EqualTo(0), log.ToString());
        Assert.That(log.ToString(), Does.Contain("2 to measure"));
        var first = File.ReadAllLines(journal);
        Assert.That(first, Has.Length.EqualTo(3));

        (cli, output, log) = NewCli();
        Assert.That(cli.Invoke([.. common, "--random", "3"]), Is.EqualTo(0), log.ToString());
        Assert.That(log.ToString(), Does.Contain("1 to measure (2 already in"));
        var second = File.ReadAllLines(journal);
        Assert.That(second, Has.Length.EqualTo(4));
        Assert.That(second[..3], Is.EqualTo(first), "earlier lines are kept as they were");

        using var doc = JsonDocument.Parse(output.ToString());
        var root = doc.RootElement;
        Assert.That(root.GetProperty("reference").GetString(), Is.EqualTo("0xCBAC1FED"));
        var reference = root.GetProperty("reference_result").GetProperty("per_bits")[0];
        Assert.That(reference.GetProperty("difference").GetDouble(), Is.EqualTo(0));
        var results = root.GetProperty("results").EnumerateArray().ToList();
        Assert.That(results.Select(r => r.GetProperty("rank").GetInt32()), Is.EqualTo(new[] { 1, 2, 3 }));
        var scores = results.Select(r => r.GetProperty("score").GetDouble()).ToList();
        Assert.That(scores, Is.Ordered);
        var top = results[0].GetProperty("result").GetProperty("per_bits")[0];
        Assert.That(top.GetProperty("relative_difference").GetDouble(), Is.EqualTo(scores[0]).Within(1e-12));
        Assert.That(top.GetProperty("mse_low").GetDouble(), Is.LessThan(top.GetProperty("mse").GetDouble()));
    }

    [Test]
    public void TableAndPlotShowTheTopAndTheListedCandidates()
    {
        var list = Path.Combine(_dir, "list.txt");
        File.WriteAllText(list, "0xFF7A83E5\n0xCAF6A435\n");
        var plot = Path.Combine(_dir, "screen.svg");
        var (cli, output, log) = NewCli();
        int code = cli.Invoke("codebooks", "--screen", list, "--random", "3", "--bits", "4,8", "--tiles", "8", "--device", "cpu", "--top", "2", "--plot", plot,
            "--top-list", Path.Combine(_dir, "top.txt"));
        Assert.That(code, Is.EqualTo(0), log.ToString());
        var text = output.ToString();
        Assert.That(text, Does.Contain("0xCBAC1FED").And.Contain("0xFF7A83E5 (listed)").And.Contain("0xCAF6A435 (listed)"));
        Assert.That(text, Does.Contain("K=4:").And.Contain("K=8:"));
        var svg = File.ReadAllText(plot);
        var top = MultiplierList.Read(Path.Combine(_dir, "top.txt"), CodebookKind.Mcg);
        Assert.That(top, Has.Count.EqualTo(2), "--top 2");
        Assert.That(text, Does.Contain($"│ 1    │ 0x{top[0]:X8}").And.Contain($"│ 2    │ 0x{top[1]:X8}"), "the list holds the top of the ranking, in order");
        Assert.That(svg, Does.StartWith("<svg").And.Contain("0xCBAC1FED (exllamav3)").And.Contain("#1 0x").And.Contain("Paired difference"));
        Assert.That(svg, Does.Contain("<path d=\"M"), "interval bars");
    }
}
