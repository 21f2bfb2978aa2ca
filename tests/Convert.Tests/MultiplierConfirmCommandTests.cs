using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Converter.Cli;
using Converter.Cli.Commands.Codebooks;
using Converter.Trellis.Codebooks;
using NUnit.Framework;
using static Converter.Convert.Tests.CliHarness;

namespace Converter.Convert.Tests;

/// <summary>
/// `trellis codebooks --confirm MODEL_DIR` (issue 18 part 2) end to end on the one-layer test-tiny model of
/// <see cref="SyntheticModelFixture"/> (samples/tiny-llama cut to one layer has 5× the weights: about a CPU-minute per
/// conversion, most of it the scale search, where this test may spend seconds) at 2 bpw:
/// exllamav3's locked MCG multiplier and one other at two seeds, four conversions made once and shared by the tests; then the
/// table's rows and pairing, an independent `trellis compare` of one of the folders, a re-run that reuses every
/// conversion, the screen-driven path, and the bad inputs.
/// </summary>
[NonParallelizable]
public class MultiplierConfirmCommandTests
{
    private const string Other = "0xFF7A83E5";
    private const string Locked = "0xCBAC1FED";

    /// <summary>Small calibration and evaluation, fp16 head (its 4096×256 Viterbi would dominate), on the CPU.</summary>
    private static readonly string[] Small =
    [
        "--confirm-bits", "2", "--head-bits", "16", "--cal-rows", "8", "--cal-cols", "64", "--cal-text", SyntheticModelFixture.CalText,
        "--rows", "2", "--length", "64", "--device", "cpu",
    ];

    private DirectoryInfo _dir = null!;
    private string _model = null!;
    private string _out = null!;
    private JsonNode _json = null!;
    private double _firstSeconds;

    private string[] ConfirmArgs(params string[] extra) =>
        ["codebooks", "--confirm", _model, "--codebook", $"mcg:{Other}", "--confirm-seeds", "0,1", "--confirm-out", _out, .. Small, "--json", .. extra];

    [OneTimeSetUp]
    public void ConfirmOnce()
    {
        _dir = Directory.CreateTempSubdirectory("trellis-confirm-");
        _model = SyntheticModelFixture.ModelDir;
        _out = Path.Combine(_dir.FullName, "confirm");
        var clock = Stopwatch.StartNew();
        var (cli, output, log) = NewCli();
        int code = cli.Invoke(ConfirmArgs());
        _firstSeconds = clock.Elapsed.TotalSeconds;
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), log.ToString());
        Assert.That(log.ToString(), Does.Contain("confirm: 4 conversion(s)").And.Contain("0 finished already, 4 to run"));
        _json = JsonNode.Parse(output.ToString())!;
    }

    [OneTimeTearDown]
    public void Cleanup() => _dir.Delete(recursive: true);

    [Test]
    public void OneRowPerMultiplierLockedFirstWithEverySeedAndOnlyTheLockedOneRuns()
    {
        var rows = _json["results"]!.AsArray();
        Assert.That(rows.Select(r => r!["multiplier"]!.GetValue<string>()), Is.EqualTo(new[] { Locked, Other }));
        Assert.That(rows.Select(r => r!["locked"]!.GetValue<bool>()), Is.EqualTo(new[] { true, false }));
        Assert.That(rows.Select(r => r!["exllamav3_runs"]!.GetValue<bool>()), Is.EqualTo(new[] { true, false }), "exllamav3 decodes only its locked multiplier");
        foreach (var r in rows)
        {
            Assert.That(r!["seeds"]!.AsArray().Select(s => s!.GetValue<int>()), Is.EqualTo(new[] { 0, 1 }));
            Assert.That(r["kl"]!["count"]!.GetValue<int>(), Is.EqualTo(2));
            Assert.That(r["kl"]!["mean"]!.GetValue<double>(), Is.GreaterThan(0).And.LessThan(5), "a 2-bit conversion loses something, not everything");
            Assert.That(r["top1"]!["mean"]!.GetValue<double>(), Is.GreaterThan(0).And.LessThanOrEqualTo(1));
        }
        var variants = _json["variants"]!.AsArray();
        Assert.That(variants.Select(v => (v!["multiplier"]!.GetValue<string>(), v["seed"]!.GetValue<int>())),
            Is.EqualTo(new[] { (Locked, 0), (Other, 0), (Locked, 1), (Other, 1) }), "seed-major, the locked multiplier first at each seed");
        foreach (var v in variants)
        {
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(v!["directory"]!.GetValue<string>(), "config.json")))!["quantization_config"]!;
            Assert.That(config["codebook_multiplier"]!.GetValue<string>(), Is.EqualTo(v["multiplier"]!.GetValue<string>()),
                "each folder holds the multiplier its row names");
        }
    }

    [Test]
    public void TheKlRatioPairsEachSeedWithTheLockedMultipliersConversionAtThatSeed()
    {
        var variants = _json["variants"]!.AsArray().ToDictionary(v => (v!["multiplier"]!.GetValue<string>(), v["seed"]!.GetValue<int>()), v => v!["kl"]!.GetValue<double>());
        double expected = (variants[(Other, 0)] / variants[(Locked, 0)] + variants[(Other, 1)] / variants[(Locked, 1)]) / 2;
        var other = _json["results"]![1]!;
        Assert.That(other["kl_ratio"]!.GetValue<double>(), Is.EqualTo(expected).Within(1e-12));
        Assert.That(other["kl_ratio_low"]!.GetValue<double>(), Is.LessThanOrEqualTo(expected));
        Assert.That(other["kl_ratio_high"]!.GetValue<double>(), Is.GreaterThanOrEqualTo(expected));
        Assert.That(_json["results"]![0]!["kl_ratio"]!.GetValue<double>(), Is.EqualTo(1));
        Assert.That(_json["results"]![0]!["kl_ratio_low"], Is.Null, "the baseline has no interval against itself");
    }

    [Test]
    public void AVariantsKlIsWhatCompareReportsForTheSameFolder()
    {
        var variant = _json["variants"]!.AsArray().Single(v => v!["multiplier"]!.GetValue<string>() == Other && v["seed"]!.GetValue<int>() == 1)!;
        var (cli, output, log) = NewCli();
        int code = cli.Invoke("compare", variant["directory"]!.GetValue<string>(), "--reference", _model, "--rows", "2", "--length", "64", "--device", "cpu", "--json");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), log.ToString());
        var compared = JsonNode.Parse(output.ToString())!["results"]![0]!;
        Assert.That(variant["kl"]!.GetValue<double>(), Is.EqualTo(compared["kl_ab"]!.GetValue<double>()).Within(1e-9));
        Assert.That(variant["top1"]!.GetValue<double>(), Is.EqualTo(compared["topk_agreement"]![0]!.GetValue<double>()).Within(1e-12));
        Assert.That(compared["quantization"]!["exllamav3_can_decode"]!.GetValue<bool>(), Is.False);
    }

    [Test]
    public void ARerunReusesEveryConversionUntouched()
    {
        var before = Fingerprint(_out);
        var clock = Stopwatch.StartNew();
        var (cli, output, log) = NewCli();
        int code = cli.Invoke(ConfirmArgs());
        double seconds = clock.Elapsed.TotalSeconds;
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), log.ToString());
        Assert.That(log.ToString(), Does.Contain("4 finished already, 0 to run"));
        Assert.That(log.ToString().Split('\n').Count(l => l.StartsWith("confirm: reusing", StringComparison.Ordinal)), Is.EqualTo(4));
        Assert.That(log.ToString(), Does.Not.Contain("convert ["), "no conversion ran");
        Assert.That(Fingerprint(_out), Is.EqualTo(before), "the folders' files are untouched");
        var again = JsonNode.Parse(output.ToString())!;
        Assert.That(again["reused"]!.GetValue<int>(), Is.EqualTo(4));
        Assert.That(again["results"]!.ToJsonString(), Is.EqualTo(_json["results"]!.ToJsonString()), "the same conversions measure the same");
        Assert.That(seconds, Is.LessThan(_firstSeconds), "reusing is cheaper than converting");
    }

    [Test]
    public void AScreenPicksTheMultipliersAndReusesTheConversionsItShares()
    {
        // A screen of the one candidate the shared run converted: its top 1 at seed 0 is two conversions made already.
        var list = Path.Combine(_dir.FullName, "list.txt");
        File.WriteAllText(list, $"{Other}\n");
        var journal = Path.Combine(_dir.FullName, "screen.jsonl");
        var (cli, output, log) = NewCli();
        int code = cli.Invoke(["codebooks", "--screen", list, "--bits", "2", "--tiles", "8", "--out", journal, "--top", "1", "--confirm", _model,
            "--confirm-seeds", "0", "--confirm-out", _out, .. Small, "--json"]);
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), log.ToString());
        var json = JsonNode.Parse(output.ToString())!;
        Assert.That(json["screen"]!["results"]![0]!["result"]!["multiplier"]!.GetValue<string>(), Is.EqualTo(Other));
        Assert.That(json["results"]!.AsArray().Select(r => r!["multiplier"]!.GetValue<string>()), Is.EqualTo(new[] { Locked, Other }));
        Assert.That(json["reused"]!.GetValue<int>(), Is.EqualTo(2));
        Assert.That(json["variants"]![1]!["kl"]!.GetValue<double>(), Is.EqualTo(Kl(_json, Other, 0)), "the same folder measures the same");
        Assert.That(File.ReadAllLines(journal), Has.Length.EqualTo(2), "the journal: its header and the one candidate");
    }

    private static double Kl(JsonNode json, string multiplier, int seed) =>
        json["variants"]!.AsArray().Single(v => v!["multiplier"]!.GetValue<string>() == multiplier && v["seed"]!.GetValue<int>() == seed)!["kl"]!.GetValue<double>();

    [Test]
    public void AnInterruptedConversionIsResumedAndAFinishedOneCopiedElsewhereReused()
    {
        // The locked seed-0 conversion copied from the shared run, and the other multiplier's seed-0 conversion stopped
        // after the decoder layer, as a killed confirmation would leave it (convert --stop-after, the same settings).
        var outDir = Path.Combine(_dir.FullName, "resumed");
        var lockedDir = Path.Combine(outDir, $"mcg-{Locked}-2bpw-s0");
        CopyDirectory(Path.Combine(_out, $"mcg-{Locked}-2bpw-s0"), lockedDir);
        var otherDir = Path.Combine(outDir, $"mcg-{Other}-2bpw-s0");
        var (code, _, log) = SyntheticModelFixture.Run("convert", _model, "-o", otherDir, "--bits", "2", "--head-bits", "16", "--codebook", "mcg",
            "--multiplier", Other, "--allow-nonstandard-multiplier", "--cal-rows", "8", "--cal-cols", "64", "--cal-text", SyntheticModelFixture.CalText,
            "--seed", "0", "--device", "cpu", "--checkpoint-interval", "0", "--stop-after", "2");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), log);
        Assert.That(Directory.Exists(otherDir), Is.False, "stopped before its output");

        var (cli, output, confirmLog) = NewCli();
        code = cli.Invoke(["codebooks", "--confirm", _model, "--codebook", $"mcg:{Other}", "--confirm-seeds", "0", "--confirm-out", outDir, .. Small, "--json"]);
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), confirmLog.ToString());
        Assert.That(confirmLog.ToString(), Does.Contain("1 finished already, 1 to run").And.Contain("resuming at module 2"));
        var json = JsonNode.Parse(output.ToString())!;
        Assert.That(Kl(json, Other, 0), Is.EqualTo(Kl(_json, Other, 0)), "the resumed conversion is the uninterrupted one");
        Assert.That(Kl(json, Locked, 0), Is.EqualTo(Kl(_json, Locked, 0)));
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }

    [Test]
    public void AFolderThatIsNotOursIsRefusedBeforeAnythingRuns()
    {
        var outDir = Path.Combine(_dir.FullName, "foreign");
        var foreign = Path.Combine(outDir, $"mcg-{Locked}-2bpw-s0");
        Directory.CreateDirectory(foreign);
        File.WriteAllText(Path.Combine(foreign, "notes.txt"), "mine");
        var (cli, output, log) = NewCli();
        int code = cli.Invoke(["codebooks", "--confirm", _model, "--codebook", $"mcg:{Other}", "--confirm-seeds", "0", "--confirm-out", outDir, .. Small]);
        Assert.That(code, Is.EqualTo(ExitCodes.Failure), log.ToString());
        Assert.That(log.ToString(), Does.Contain(foreign).And.Contain("not a trellis conversion"));
        Assert.That(File.ReadAllText(Path.Combine(foreign, "notes.txt")), Is.EqualTo("mine"));
        Assert.That(Directory.GetFileSystemEntries(outDir), Is.EqualTo(new[] { foreign }), "nothing else was written");
        Assert.That(output.ToString(), Is.Empty);
    }

    [Test]
    public void AnInterruptedJobWithOtherSettingsIsRefusedBeforeAnythingRuns()
    {
        var outDir = Path.Combine(_dir.FullName, "other-job");
        var work = Path.Combine(outDir, $"mcg-{Locked}-2bpw-s0.work");
        Directory.CreateDirectory(Path.Combine(work, "ckpt"));
        File.WriteAllText(Path.Combine(work, "ckpt", "job.json"), "{}");
        File.WriteAllText(Path.Combine(work, "args.json"), """{"bits": "3"}""");
        var (cli, output, log) = NewCli();
        int code = cli.Invoke(["codebooks", "--confirm", _model, "--codebook", $"mcg:{Other}", "--confirm-seeds", "0", "--confirm-out", outDir, .. Small]);
        Assert.That(code, Is.EqualTo(ExitCodes.Failure), log.ToString());
        Assert.That(log.ToString(), Does.Contain(Path.Combine(work, "args.json")).And.Contain("bits '3', not '2'"));
        Assert.That(Directory.GetFileSystemEntries(outDir), Is.EqualTo(new[] { work }), "nothing else was written");
        Assert.That(output.ToString(), Is.Empty);
    }

    [Test]
    public void AConversionWithOtherSettingsIsRefusedNamingTheSetting()
    {
        // The locked seed-0 folder of the shared run, asked for again at another calibration volume.
        var (cli, _, log) = NewCli();
        var fewerRows = Small.Select(a => a == "8" ? "4" : a).ToArray();
        int code = cli.Invoke(["codebooks", "--confirm", _model, "--codebook", $"mcg:{Other}", "--confirm-seeds", "0", "--confirm-out", _out, .. fewerRows]);
        Assert.That(code, Is.EqualTo(ExitCodes.Failure), log.ToString());
        Assert.That(log.ToString(), Does.Contain("cal_rows '8', not '4'"));
    }

    [TestCase(ExitCodes.Usage, "--confirm needs the multipliers", "--random", "4", "--bits", "2")]
    [TestCase(ExitCodes.Usage, "--confirm needs the multipliers")]
    [TestCase(ExitCodes.Usage, "--confirm needs the multipliers", "--codebook", "mcg")]
    [TestCase(ExitCodes.Usage, "one family", "--codebook", "mcg:0xFF7A83E5,mul1:0xAD9A2EC5")]
    [TestCase(ExitCodes.Usage, "--confirm-bits must be in 1..8", "--codebook", "mcg:0xFF7A83E5", "--confirm-bits", "9")]
    [TestCase(ExitCodes.Usage, "--confirm-seeds: 'x'", "--codebook", "mcg:0xFF7A83E5", "--confirm-seeds", "0,x")]
    [TestCase(ExitCodes.Usage, "--head-bits must be", "--codebook", "mcg:0xFF7A83E5", "--head-bits", "12")]
    [TestCase(ExitCodes.Usage, "--tiles is not part of a confirmation", "--codebook", "mcg:0xFF7A83E5", "--tiles", "64")]
    [TestCase(ExitCodes.Failure, "model directory not found", "--codebook", "mcg:0xFF7A83E5", "MISSING")]
    public void BadConfirmInputExitsWithOneLineAndWritesNothing(int exit, string message, params string[] args)
    {
        var outDir = Path.Combine(_dir.FullName, "bad-" + Guid.NewGuid().ToString("N")[..8]);
        var journal = outDir + ".jsonl";
        bool missing = args.Length > 0 && args[^1] == "MISSING";
        var model = missing ? Path.Combine(_dir.FullName, "no-such-model") : _model;
        var rest = missing ? args[..^1] : args;
        var extra = rest.Contains("--random") ? new[] { "--out", journal } : [];
        var (cli, output, log) = NewCli();
        int code = cli.Invoke(["codebooks", "--confirm", model, "--confirm-out", outDir, .. rest, .. extra]);
        Assert.That(code, Is.EqualTo(exit), log.ToString());
        Assert.That(log.ToString(), Does.Contain(message));
        Assert.That(log.ToString().Trim().Split('\n'), Has.Length.EqualTo(1), "one line");
        Assert.That(output.ToString(), Is.Empty);
        Assert.That(Directory.Exists(outDir) || File.Exists(journal), Is.False, "nothing written");
    }

    [TestCase("--confirm-bits", "3")]
    [TestCase("--cal-rows", "8")]
    [TestCase("--rows", "4")]
    public void ConfirmationOptionsWithoutConfirmAreUsageErrors(string option, string value)
    {
        var (cli, _, log) = NewCli();
        Assert.That(cli.Invoke("codebooks", "--bits", "2", option, value), Is.EqualTo(ExitCodes.Usage));
        Assert.That(log.ToString(), Does.Contain($"{option} belongs to a confirmation"));
    }

    [Test]
    public void BindsAConfirmation()
    {
        var (cli, _, _) = NewCli();
        var options = cli.Codebooks.Bind(cli.Parse("codebooks", "--confirm", "m", "--codebook", "mul1:0xAD9A2EC5,mul1:0x12345679", "--confirm-bits", "3.5",
            "--confirm-seeds", "2,0,2", "--confirm-out", "o", "--head-bits", "16", "--cal-rows", "4", "--rows", "3", "--length", "32", "--device", "cpu"));
        var confirm = options.Confirm!;
        Assert.That(options.Screen, Is.Null);
        Assert.That((confirm.Kind, confirm.Top), Is.EqualTo((CodebookKind.Mul1, (int?)null)));
        Assert.That(confirm.Multipliers, Is.EqualTo(new uint[] { 0xAD9A2EC5, 0x12345679 }));
        Assert.That(confirm.Seeds, Is.EqualTo(new[] { 2, 0 }), "duplicates once, in the order given");
        var s = confirm.Settings;
        Assert.That((s.ModelDir, s.OutDir, s.Bits, s.HeadBits, s.CalRows, s.EvalRows, s.EvalLength, s.Device), Is.EqualTo(("m", "o", 3.5, 16, (int?)4, 3, 32, "cpu")));

        var screened = cli.Codebooks.Bind(cli.Parse("codebooks", "--random", "10", "--codebook", "mul1", "--top", "3", "--confirm", "models/x"));
        Assert.That((screened.Confirm!.Kind, screened.Confirm.Top, screened.Screen!.Top), Is.EqualTo((CodebookKind.Mul1, (int?)3, 3)));
        Assert.That(screened.Confirm.Seeds, Is.EqualTo(new[] { 0, 1, 2 }));
        Assert.That((screened.Confirm.Settings.Bits, screened.Confirm.Settings.HeadBits, screened.Confirm.Settings.OutDir),
            Is.EqualTo((2.0, 6, Path.Combine("out", "x-confirm"))));
    }

    /// <summary>Every file's name and SHA-256 under <paramref name="dir"/>.</summary>
    private static string Fingerprint(string dir) =>
        string.Join('\n', Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => Path.GetRelativePath(dir, f) + " " + File.GetLastWriteTimeUtc(f).Ticks + " " + System.Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))));
}
