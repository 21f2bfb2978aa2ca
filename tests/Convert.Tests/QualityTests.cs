using System.Text.Json;
using Converter.Cli;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// End to end: `convert` at rising bits, then `compare` against the original: the KL divergence must fall as bits
/// rise. The default run compares the synthetic test-tiny model's conversions at 2, 3 and 4 bpw that
/// <see cref="SharedConversions"/> already holds for the pipeline tests (no conversion of its own); the sample
/// model cut to its first decoder layer is category Slow (three conversions of its own, about 1–2 minutes on 2 cores),
/// and the full model at 2, 3, 4 and 6 bpw with the 6-bit head is [Explicit] (about 12 minutes).
/// </summary>
public abstract class KlFallsAsBitsRise(int[] bits, int rows, int length)
{
    /// <summary>The bit widths compared, in rising order.</summary>
    protected IReadOnlyList<int> Bits => bits;

    /// <summary>The model the conversions were made from.</summary>
    protected abstract string Reference { get; }

    /// <summary>The conversion of <see cref="Reference"/> at <paramref name="bits"/> bpw.</summary>
    protected abstract string ConvertedAt(int bits);

    [Test]
    public void KlDivergenceFallsAndAgreementRises()
    {
        var output = new StringWriter();
        var log = new StringWriter();
        string[] args = ["compare", "--reference", Reference, .. bits.Select(ConvertedAt), "--rows", rows.ToString(), "--length", length.ToString(), "--json"];
        Assert.That(new TrellisCli(new CliContext(output, log, interactive: false)).Invoke(args), Is.EqualTo(ExitCodes.Ok), log.ToString());
        using var doc = JsonDocument.Parse(output.ToString());
        var results = doc.RootElement.GetProperty("results").EnumerateArray().ToList();
        var kl = results.Select(r => r.GetProperty("kl_ab").GetDouble()).ToList();
        var top1 = results.Select(r => r.GetProperty("topk_agreement")[0].GetDouble()).ToList();
        var configBits = results.Select(r => r.GetProperty("quantization").GetProperty("config_bits").GetDouble()).ToList();
        TestContext.Out.WriteLine(string.Join("\n", bits.Select((b, i) => $"{b} bpw: KL {kl[i]:F5}  top-1 {top1[i]:F4}")));

        Assert.That(configBits, Is.EqualTo(bits.Select(b => (double)b)));
        for (int i = 1; i < bits.Length; i++)
        {
            Assert.That(kl[i], Is.LessThan(kl[i - 1]), $"KL at {bits[i]} bpw vs {bits[i - 1]} bpw");
            Assert.That(top1[i], Is.GreaterThanOrEqualTo(top1[i - 1] - 0.01), $"top-1 agreement at {bits[i]} bpw vs {bits[i - 1]} bpw");
        }
        Assert.That(kl[^1], Is.LessThan(kl[0] / 4), "several bits more must cut KL several-fold");
    }
}

/// <summary>Default run: the synthetic test-tiny model's shared 2, 3 and 4 bpw conversions, evaluated on 4 rows × 128 tokens.</summary>
public sealed class KlFallsAsBitsRiseSynthetic() : KlFallsAsBitsRise(bits: [2, 3, 4], rows: 4, length: 128)
{
    protected override string Reference => SyntheticModelFixture.ModelDir;

    protected override string ConvertedAt(int bits) => SharedConversions.OfSyntheticModel(bits);
}

/// <summary>The sample model (the one `trellis convert` converts by default), converted once per bit width by the fixture with tiny calibration.</summary>
public abstract class KlFallsAsBitsRiseOfTheSample(int layers, int headBits, int[] bits, int rows, int length) : KlFallsAsBitsRise(bits, rows, length)
{
    private TempDirectory _dir = null!;
    private string _reference = null!;
    private readonly Dictionary<int, string> _converted = [];

    protected override string Reference => _reference;

    protected override string ConvertedAt(int bits) => _converted[bits];

    [OneTimeSetUp]
    public void ConvertOncePerBitWidth()
    {
        _dir = new TempDirectory("trellis-quality-");
        _reference = layers == 0 ? RepoPaths.SampleModel : LayerCut.FirstLayers(RepoPaths.SampleModel, _dir.File("reference"), layers);
        foreach (var b in Bits)
        {
            var output = new StringWriter();
            var log = new StringWriter();
            var outDir = _dir.File($"q{b}");
            int code = new TrellisCli(new CliContext(output, log, interactive: false)).Invoke("convert", _reference, "-o", outDir, "--bits", b.ToString(),
                "--head-bits", headBits.ToString(), "--cal-rows", "4", "--cal-cols", "128");
            Assert.That(code, Is.EqualTo(ExitCodes.Ok), log.ToString());
            _converted[b] = outDir;
        }
    }

    [OneTimeTearDown]
    public void RemoveConversions() => _dir?.Dispose();
}

/// <summary>
/// The sample model's first layer, fp16 head, 2 → 3 → 4 bpw, evaluated on 4 rows × 128 tokens. Slow: three
/// conversions of its own for what <see cref="KlFallsAsBitsRiseSynthetic"/> proves on conversions the suite holds anyway.
/// </summary>
[Category(SlowTests.Category)]
public sealed class KlFallsAsBitsRiseOneLayer() : KlFallsAsBitsRiseOfTheSample(layers: 1, headBits: 16, bits: [2, 3, 4], rows: 4, length: 128);

/// <summary>The whole sample model with the 6-bit head at 2 → 3 → 4 → 6 bpw, on the §6.1 protocol's 16 rows × 256 tokens.</summary>
[Explicit("about 12 minutes on 2 cores: four full conversions")]
public sealed class KlFallsAsBitsRiseFullModel() : KlFallsAsBitsRiseOfTheSample(layers: 0, headBits: 6, bits: [2, 3, 4, 6], rows: 16, length: 256);
