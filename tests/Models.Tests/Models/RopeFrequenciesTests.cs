using System.Text.Json.Nodes;
using Converter.Formats.HuggingFace;
using Converter.Models.Rotary;

namespace Converter.Models.Tests.Models;

public class RopeFrequenciesTests
{
    // Llama 3.1 8B's published settings: theta 500000, head_dim 128, factor 8, low 1, high 4, original 8192.
    private static readonly Llama3RopeScaling Llama31 = new(8, 1, 4, 8192);

    [Test]
    public void DefaultIsThetaToTheMinusTwoIOverD()
    {
        var inv = RopeFrequencies.Default(10000, 8);
        Assert.That(inv, Is.EqualTo(new[] { 1f, 0.1f, 0.01f, 0.001f }).Within(1e-7f));
    }

    [Test]
    public void Llama3KeepsHighDividesLowAndInterpolatesBetween()
    {
        var original = RopeFrequencies.Default(500000, 128);
        var scaled = RopeFrequencies.Llama3(original, Llama31);
        int kept = 0, divided = 0, interpolated = 0;
        for (int i = 0; i < original.Length; i++)
        {
            double f = original[i], wavelength = 2 * Math.PI / f;
            if (wavelength < 8192 / 4.0)
            {
                Assert.That(scaled[i], Is.EqualTo(original[i]), $"high frequency {i} is kept");
                kept++;
            }
            else if (wavelength > 8192 / 1.0)
            {
                Assert.That(scaled[i], Is.EqualTo((float)(f / 8)).Within(1e-6).Percent, $"low frequency {i} is divided by factor");
                divided++;
            }
            else
            {
                double smooth = (8192 / wavelength - 1) / (4 - 1);
                Assert.That(smooth, Is.InRange(0.0, 1.0));
                Assert.That(scaled[i], Is.EqualTo((float)((1 - smooth) * f / 8 + smooth * f)).Within(1e-6).Percent, $"medium frequency {i}");
                Assert.That(scaled[i], Is.InRange(original[i] / 8, original[i]));
                interpolated++;
            }
        }
        // 2π·500000^(i/64) < 2048 for i ≤ 28 and > 8192 for i ≥ 35: all three bands occur.
        Assert.That((kept, divided, interpolated), Is.EqualTo((29, 29, 6)));
        for (int i = 1; i < scaled.Length; i++)
            Assert.That(scaled[i], Is.LessThan(scaled[i - 1]), "frequencies stay strictly decreasing");
    }

    [Test]
    public void Llama3PinnedValues()
    {
        // Hand-computed from _compute_llama3_parameters for theta 500000, head_dim 128 and Llama31 above.
        var scaled = RopeFrequencies.Compute(new RopeConfig(RopeType.Llama3, 500000, Llama31), 128);
        Assert.That(scaled[0], Is.EqualTo(1f));
        // i = 63: 500000^(−126/128) / 8 (wavelength ≈ 2.6e6 > 8192).
        Assert.That(scaled[63], Is.EqualTo((float)(Math.Pow(500000, -126.0 / 128) / 8)).Within(1e-6).Percent);
        // i = 32: f = 1/√500000, wavelength 2π·707.1 ≈ 4443 lies between 2048 and 8192, smooth ≈ 0.281.
        double f32 = 1 / Math.Sqrt(500000), smooth = (8192 * f32 / (2 * Math.PI) - 1) / 3;
        Assert.That(smooth, Is.EqualTo(0.2813).Within(1e-4));
        Assert.That(scaled[32], Is.EqualTo((float)((1 - smooth) * f32 / 8 + smooth * f32)).Within(1e-5).Percent);
    }

    [Test]
    public void OtherRopeTypesAreRefusedNamingTheType()
    {
        var json = JsonNode.Parse("""
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
             "num_attention_heads": 2, "vocab_size": 16, "max_position_embeddings": 64,
             "rope_scaling": {"rope_type": "dynamic", "factor": 4.0}}
            """)!.AsObject();
        var e = Assert.Throws<ModelConfigException>(() => TransformerModel.FromConfig(ModelConfig.Parse(json, "config.json")));
        Assert.That(e!.Message, Does.Contain("dynamic").And.Contain("config.json").And.Contain("rope_scaling"));
    }

    /// <summary>gpt-oss's YaRN: θ 150000, factor 32, β 32/1 over 4096 positions, head_dim 64, truncate false.</summary>
    [Test]
    public void YarnKeepsFastDimensionsDividesSlowOnesAndRampsBetween()
    {
        var json = JsonNode.Parse("""
            {"max_position_embeddings": 131072, "rope_parameters": {"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0,
             "beta_fast": 32.0, "beta_slow": 1.0, "original_max_position_embeddings": 4096, "truncate": false}}
            """)!.AsObject();
        var rope = RopeConfig.Parse(new ConfigFields(json, "config.json"));
        Assert.That(rope.Type, Is.EqualTo(RopeType.Yarn));
        Assert.That(rope.Yarn!.AttentionFactor, Is.EqualTo(0.1 * Math.Log(32) + 1).Within(1e-12), "mscale 0.1·ln 32 + 1 ≈ 1.3466");
        var inv = RopeFrequencies.Compute(rope, 64);
        // Correction range: d·ln(4096/(2π·β))/(2 ln θ) = 8.093 for β = 32 and 17.398 for β = 1 (not truncated).
        double low = 64 * Math.Log(4096 / (32 * 2 * Math.PI)) / (2 * Math.Log(150000));
        double high = 64 * Math.Log(4096 / (1 * 2 * Math.PI)) / (2 * Math.Log(150000));
        Assert.That(low, Is.EqualTo(8.093).Within(1e-3));
        Assert.That(high, Is.EqualTo(17.398).Within(1e-3));
        double Pos(int i) => Math.Pow(150000, 2.0 * i / 64);
        Assert.That(inv[0], Is.EqualTo(1f), "below the range: extrapolated, unchanged");
        Assert.That(inv[8], Is.EqualTo((float)(1 / Pos(8))).Within(1e-5).Percent);
        Assert.That(inv[31], Is.EqualTo((float)(1 / (32 * Pos(31)))).Within(1e-5).Percent, "above the range: divided by the factor");
        Assert.That(inv[18], Is.EqualTo((float)(1 / (32 * Pos(18)))).Within(1e-5).Percent);
        // i = 12: ramp (12 − low)/(high − low), extrapolation weight 1 − ramp.
        double ramp = (12 - low) / (high - low);
        Assert.That(inv[12], Is.EqualTo((float)(1 / (32 * Pos(12)) * ramp + 1 / Pos(12) * (1 - ramp))).Within(1e-4).Percent);
    }

    [Test]
    public void YarnTruncationWidensTheRangeToWholeDimensions()
    {
        var scaling = new YarnRopeScaling(32, 32, 1, 4096, Truncate: true, AttentionFactor: 1);
        var inv = RopeFrequencies.Yarn(150000, 64, scaling);
        double Pos(int i) => Math.Pow(150000, 2.0 * i / 64);
        // floor(8.093) = 8, ceil(17.398) = 18: dimension 8 is fully extrapolated, 18 fully interpolated, 13 halfway.
        Assert.That(inv[8], Is.EqualTo((float)(1 / Pos(8))).Within(1e-5).Percent);
        Assert.That(inv[18], Is.EqualTo((float)(1 / (32 * Pos(18)))).Within(1e-5).Percent);
        Assert.That(inv[13], Is.EqualTo((float)(0.5 / (32 * Pos(13)) + 0.5 / Pos(13))).Within(1e-4).Percent);
    }

    [Test]
    public void YarnBlendsExtrapolationAndInterpolationOverTheCorrectionRange()
    {
        // d = 8, θ = 10⁴, 4096 original positions, factor 4: the correction dims of 32 and 1 turns are 1.309 and 2.814,
        // truncated to [1, 3]; the ramp (i − 1)/2 keeps frequencies 0 and 1, halves the interpolation of 2, and fully
        // interpolates 3 (÷ 4).
        var yarn = new YarnRopeScaling(4, 32, 1, 4096, Truncate: true, AttentionFactor: 1.0);
        var inv = RopeFrequencies.Yarn(10000, 8, yarn);
        Assert.That(inv, Is.EqualTo(new[] { 1.0, 0.1, 0.01 * (0.5 / 4 + 0.5), 0.001 / 4 }).Within(1e-7));
    }
}
