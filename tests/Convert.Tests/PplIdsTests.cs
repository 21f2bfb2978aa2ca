using System.Text.Json;
using Converter.Cli;
using Converter.Eval.Evaluation;
using Converter.Formats.Safetensors;
using Converter.Formats.Tokenizers;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// `trellis ppl --ids FILE` and `--logits-out FILE`: arguments → exit code, malformed ids files, the score against
/// the text path's on the same ids, and the logits against transformers' on the rand-qwen3 reference input.
/// </summary>
public class PplIdsTests
{
    private static readonly string RandQwen3 = RepoPaths.TestModel("rand-qwen3");

    /// <summary>{ids}: a valid ids file, {model}: a real model; the rest is literal.</summary>
    private static IEnumerable<TestCaseData> ArgumentCases()
    {
        yield return Case(ExitCodes.Usage, "--ids cannot be combined with --text", "ppl", "{model}", "--ids", "{ids}", "--text", "t.txt");
        yield return Case(ExitCodes.Usage, "--ids cannot be combined with --rows", "ppl", "{model}", "--ids", "{ids}", "--rows", "3");
        yield return Case(ExitCodes.Usage, "--ids cannot be combined with --length", "ppl", "{model}", "--ids", "{ids}", "--length", "8");
        yield return Case(ExitCodes.Usage, "--text, --rows", "ppl", "{model}", "--ids", "{ids}", "--text", "t.txt", "--rows", "3");
        yield return Case(ExitCodes.Usage, "--ids", "ppl", "{model}", "--ids");
        yield return Case(ExitCodes.Usage, "--logits-out", "ppl", "{model}", "--ids", "{ids}", "--logits-out");
        yield return Case(ExitCodes.Usage, "--device", "ppl", "{model}", "--ids", "{ids}", "--device", "tpu");
        yield return Case(ExitCodes.Failure, "/nonexistent/ids.json: token ids file not found", "ppl", "{model}", "--ids", "/nonexistent/ids.json");
        yield return Case(ExitCodes.Failure, "/nonexistent/model-dir", "ppl", "/nonexistent/model-dir", "--ids", "{ids}");
        yield return Case(ExitCodes.Failure, "/nonexistent/dir/l.safetensors", "ppl", "{model}", "--ids", "{ids}", "--logits-out", "/nonexistent/dir/l.safetensors");
        yield return Case(ExitCodes.Ok, "Perplexity", "ppl", "{model}", "--ids", "{ids}", "--device", "cpu");
    }

    private static TestCaseData Case(int exitCode, string message, params string[] args) =>
        new TestCaseData(args, exitCode, message).SetName($"{{m}}({string.Join(' ', args[2..])} → {exitCode})");

    [TestCaseSource(nameof(ArgumentCases))]
    public void ArgumentsGiveTheirExitCode(string[] args, int exitCode, string message)
    {
        using var dir = new TempDirectory();
        var ids = WriteIds(dir.File("ids.json"), Enumerable.Range(1, 8).ToArray());
        var (cli, output, log) = CliHarness.NewCli();
        Assert.That(cli.Invoke([.. args.Select(a => a.Replace("{ids}", ids).Replace("{model}", RandQwen3))]), Is.EqualTo(exitCode), log.ToString());
        if (exitCode == ExitCodes.Ok)
        {
            Assert.That(output.ToString(), Does.Contain(message));
            return;
        }
        Assert.That(log.ToString(), Does.Contain(message));
        Assert.That(output.ToString(), Is.Empty);
        if (exitCode == ExitCodes.Failure)
            Assert.That(log.ToString().Split('\n').Where(l => l.StartsWith("trellis:", StringComparison.Ordinal)).ToList(), Has.Count.EqualTo(1), "one error line");
    }

    [Test]
    public void IdsBindWithoutTextAndKeepTheDevice()
    {
        var (cli, _, _) = CliHarness.NewCli();
        var o = cli.Ppl.Bind(cli.Parse("ppl", "m", "--ids", "a.json", "--device", "cpu", "--logits-out", "l.safetensors", "--json"));
        Assert.That((o.ModelDir, o.Text, o.IdsPath, o.Device, o.LogitsOut, o.Json), Is.EqualTo(("m", (Cli.Commands.Eval.EvalData?)null, "a.json", "cpu", "l.safetensors", true)));

        var t = cli.Ppl.Bind(cli.Parse("ppl", "m", "--rows", "2"));
        Assert.That((t.IdsPath, t.LogitsOut, t.Text!.Rows, t.Device), Is.EqualTo(((string?)null, (string?)null, 2, "auto")));
    }

    [TestCase("[1, 2", "not valid JSON")]
    [TestCase("nope\n", "not valid JSON")]
    [TestCase("{\"ids\": [1, 2]}", "expected a JSON array of token ids or an array of such arrays, found an object")]
    [TestCase("7", "found a number")]
    [TestCase("[]", "the array is empty")]
    [TestCase("[[]]", "row 0 has 0 id(s); a row needs at least 2")]
    [TestCase("[5]", "the row has 1 id(s); a row needs at least 2")]
    [TestCase("[1, [2, 3]]", "position 1: a nested array")]
    [TestCase("[[[1, 2]]]", "row 0, position 0: a nested array")]
    [TestCase("[[1, 2], 3]", "element 1 is a number, but element 0 is an array")]
    [TestCase("[[1, 2, 3], [4, 5]]", "row 1 has 2 ids, row 0 has 3; all rows must have the same length")]
    [TestCase("[1, 2.5]", "position 1: 2.5 is not an integer token id")]
    [TestCase("[1, \"2\"]", "position 1: \"2\" is not an integer token id")]
    [TestCase("[1, null]", "position 1: null is not an integer token id")]
    [TestCase("[1, 99999999999999999999]", "position 1: 99999999999999999999 is far outside any vocabulary")]
    [TestCase("[1, 2048]", "position 1: id 2048 is outside the vocabulary 0..2047")]
    [TestCase("[[1, 2], [-1, 3]]", "row 1, position 0: id -1 is outside the vocabulary 0..2047")]
    public void BadIdsFilesFailInOneLineNamingTheFile(string content, string problem)
    {
        using var dir = new TempDirectory();
        var ids = dir.File("bad-ids.json");
        File.WriteAllText(ids, content);
        var logits = dir.File("logits.safetensors");
        var (cli, output, log) = CliHarness.NewCli();
        Assert.That(cli.Invoke("ppl", RandQwen3, "--ids", ids, "--logits-out", logits, "--device", "cpu"), Is.EqualTo(ExitCodes.Failure), log.ToString());
        var errors = log.ToString().Split('\n').Where(l => l.StartsWith("trellis:", StringComparison.Ordinal)).ToList();
        Assert.That(errors, Has.Count.EqualTo(1), log.ToString());
        Assert.That(errors[0], Does.StartWith($"trellis: error: {ids}: ").And.Contain(problem));
        Assert.That(output.ToString(), Is.Empty);
        Assert.That(Directory.GetFiles(dir.Path).Select(Path.GetFileName), Is.EqualTo(new[] { "bad-ids.json" }), "nothing written");
    }

    [Test]
    public void IdsScoreAndLogitsEqualTheTextRunsOnTheSameIds()
    {
        using var dir = new TempDirectory();
        var text = Path.Combine(RepoPaths.Samples, "data", "eval-heldout.txt");
        var tokenizer = Tokenizer.FromFile(Path.Combine(RepoPaths.SampleModel, "tokenizer.json"));
        var rows = EvalRows.Build(tokenizer, File.ReadAllText(text), text, rows: 2, length: 32);
        var ids = WriteIds(dir.File("ids.json"), rows.ToArray());

        var fromText = Ppl(RepoPaths.SampleModel, dir.File("text.safetensors"), "--text", text, "--rows", "2", "--length", "32");
        var fromIds = Ppl(RepoPaths.SampleModel, dir.File("ids.safetensors"), "--ids", ids);

        Assert.That(fromIds.GetProperty("ppl").GetDouble(), Is.EqualTo(fromText.GetProperty("ppl").GetDouble()));
        foreach (var key in new[] { "rows", "length", "tokens", "scored", "vocabulary" })
            Assert.That(fromIds.GetProperty(key).GetInt64(), Is.EqualTo(fromText.GetProperty(key).GetInt64()), key);
        Assert.That((fromIds.GetProperty("ids").GetString(), fromIds.GetProperty("text").ValueKind), Is.EqualTo((ids, JsonValueKind.Null)));
        Assert.That((fromText.GetProperty("text").GetString(), fromText.GetProperty("ids").ValueKind), Is.EqualTo((text, JsonValueKind.Null)));
        Assert.That(fromText.GetProperty("logits_out").GetString(), Is.EqualTo(dir.File("text.safetensors")));

        using var textLogits = SafetensorsFile.Open(dir.File("text.safetensors"));
        using var idsLogits = SafetensorsFile.Open(dir.File("ids.safetensors"));
        Assert.That(textLogits.Info("logits").Shape, Is.EqualTo(new long[] { 2, 32, 4096 }), "a text run writes (rows, length, vocab)");
        Assert.That(idsLogits.Info("logits").Shape, Is.EqualTo(new long[] { 2, 32, 4096 }));
        Assert.That(idsLogits.Info("logits").DType, Is.EqualTo(DType.F32));
        Assert.That(idsLogits.ReadFloat32("logits"), Is.EqualTo(textLogits.ReadFloat32("logits")));
    }

    [Test]
    public void LogitsOfOneFlatRowMatchTransformers()
    {
        using var dir = new TempDirectory();
        var (referenceIds, reference) = Reference();
        var ids = WriteIds(dir.File("ids.json"), referenceIds);
        var json = Ppl(RandQwen3, dir.File("logits.safetensors"), "--ids", ids);
        Assert.That((json.GetProperty("rows").GetInt32(), json.GetProperty("length").GetInt32(), json.GetProperty("scored").GetInt64()), Is.EqualTo((1, 64, 63L)));

        using var file = SafetensorsFile.Open(dir.File("logits.safetensors"));
        Assert.That(file.TensorNames, Is.EqualTo(new[] { "logits" }));
        Assert.That(file.Info("logits").Shape, Is.EqualTo(new long[] { 64, 2048 }), "a flat array writes (length, vocab)");
        AssertClose(file.ReadFloat32("logits"), reference);
    }

    [Test]
    public void LogitsOfSeveralRowsMatchTransformersRowByRow()
    {
        using var dir = new TempDirectory();
        var (referenceIds, reference) = Reference();
        var ids = WriteIds(dir.File("ids.json"), referenceIds, referenceIds, referenceIds);
        Ppl(RandQwen3, dir.File("logits.safetensors"), "--ids", ids);

        using var file = SafetensorsFile.Open(dir.File("logits.safetensors"));
        Assert.That(file.Info("logits").Shape, Is.EqualTo(new long[] { 3, 64, 2048 }));
        var logits = file.ReadFloat32("logits");
        for (int r = 0; r < 3; r++)
            AssertClose(logits.AsSpan(r * reference.Length, reference.Length).ToArray(), reference);
    }

    /// <summary>rand-qwen3's reference input ids and transformers' float32 logits for them, (64, 2048).</summary>
    private static (int[] Ids, float[] Logits) Reference()
    {
        using var reference = SafetensorsFile.Open(Path.Combine(RepoPaths.Reference, "rand-qwen3.public.safetensors"));
        Assert.That(reference.Info("logits").Shape, Is.EqualTo(new long[] { 64, 2048 }), "fixture shape");
        return (reference.ReadRaw<long>("input_ids").Select(checked(x => (int)x)).ToArray(), reference.ReadFloat32("logits"));
    }

    /// <summary>Max |actual − expected| within 1e-4 of max |expected| (the CPU forward reaches ~1e-6 here).</summary>
    private static void AssertClose(float[] actual, float[] expected)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        double maxError = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxError = Math.Max(maxError, Math.Abs(actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        TestContext.Out.WriteLine($"logits: max abs error {maxError:E2}, max |ref| {scale:F3}");
        Assert.That(maxError, Is.LessThanOrEqualTo(1e-4 * scale));
    }

    /// <summary>Runs `ppl MODEL --logits-out LOGITS --json ARGS` on the CPU; the parsed JSON result.</summary>
    private static JsonElement Ppl(string model, string logits, params string[] args)
    {
        var (cli, output, log) = CliHarness.NewCli();
        Assert.That(cli.Invoke(["ppl", model, "--logits-out", logits, "--json", "--device", "cpu", .. args]), Is.EqualTo(ExitCodes.Ok), log.ToString());
        using var document = JsonDocument.Parse(output.ToString());
        return document.RootElement.Clone();
    }

    /// <summary>One row as a flat array, several as an array of arrays.</summary>
    private static string WriteIds(string path, params int[][] rows)
    {
        File.WriteAllText(path, rows.Length == 1 ? JsonSerializer.Serialize(rows[0]) : JsonSerializer.Serialize(rows));
        return path;
    }
}
