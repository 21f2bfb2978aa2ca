using Converter.Cli;
using Converter.Cli.Samples;
using Converter.Conversion.Samples;
using Converter.Models.Synthetic;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// A one-layer random model (the test-tiny shape of `trellis synth`) written once per test run, plus helpers to run
/// the real CLI on it: conversions take seconds, so the pipeline is tested end to end rather than in pieces.
/// </summary>
internal static class SyntheticModelFixture
{
    private static readonly Lazy<string> Root = new(() => Directory.CreateTempSubdirectory("trellis-convert-tests-").FullName);
    private static readonly Lazy<string> Model = new(() =>
    {
        var dir = Path.Combine(Root.Value, "model");
        SyntheticCheckpoint.Write(dir, SyntheticShape.Presets["test-tiny"], seed: 1, outliers: 2, shardBytes: 1L << 30, BuiltInSamples.Tokenizer());
        return dir;
    });

    public static string ModelDir => Model.Value;

    /// <summary>
    /// The bits of conversions that test a layout, an architecture or a source format rather than quality: 4 bpw,
    /// what users convert at. The CPU encoder is faster per tile at K = 4 than at 2 (`trellis bench encoder`, one
    /// thread: 157 against 121 tiles/s), and a whole conversion more so: rand-phi3 took 83 CPU-seconds at 2 bpw and 36 at 4
    /// (2026-12-03, dev machine), and the suite's time is its conversions'. A wrong layout still shows at 4 bpw:
    /// another weight's slice gives a relative error near √2 and a broken forward a KL of order 1 or NaN.
    /// </summary>
    public const int LayoutBits = 4;

    public static string CalText => Path.Combine(RepoPaths.Samples, "data", "calibration.txt");

    /// <summary>A fresh directory path (not created) under the run's temp root.</summary>
    public static string NewPath(string name) => Path.Combine(Root.Value, name + "-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>Small calibration, fp16 head (a 4096×128 head would dominate the run time), checkpoint after every module.</summary>
    public static string[] ConvertArgs(string model, string outDir, double bits, params string[] extra) =>
    [
        "convert", model, "-o", outDir, "--bits", bits.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--cal-rows", "8", "--cal-cols", "64", "--cal-text", CalText, "--head-bits", "16", "--checkpoint-interval", "0", .. extra,
    ];

    public static (int Code, string Output, string Log) Run(params string[] args)
    {
        var output = new StringWriter();
        var log = new StringWriter();
        int code = new TrellisCli(new CliContext(output, log, interactive: false)).Invoke(args);
        return (code, output.ToString(), log.ToString());
    }

    /// <summary>
    /// `trellis eval` of <paramref name="quantized"/> against <paramref name="reference"/> on 2 rows × 64 tokens
    /// (which must succeed); prints KL and top-K agreement under <paramref name="label"/> and returns KL(A, B).
    /// </summary>
    public static double EvalKl(string quantized, string reference, string label)
    {
        var (code, json, log) = Run("eval", quantized, "--reference", reference, "--rows", "2", "--length", "64", "--json");
        Assert.That(code, Is.EqualTo(0), log);
        var result = System.Text.Json.Nodes.JsonNode.Parse(json)!;
        double kl = result["kl_ab"]!.GetValue<double>();
        TestContext.Out.WriteLine($"{label}: KL {kl:F5}, top-K agreement {result["topk_agreement"]!.ToJsonString()}");
        return kl;
    }

    /// <summary>Copies a model directory so a test can corrupt its copy.</summary>
    public static string CopyModel(string name)
    {
        var dir = NewPath(name);
        Directory.CreateDirectory(dir);
        foreach (var file in Directory.GetFiles(ModelDir))
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        return dir;
    }
}
