using Converter.Conversion.Calibration;
using Converter.Formats.HuggingFace;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>The default calibration volume rule (CalibrationVolume's comment states it): 125 tokens per hidden unit within 128 × 512 … 250 × 2048.</summary>
public class CalibrationVolumeTests
{
    [TestCase(256, 4096, 128, 512, TestName = "tiny-llama and the test models: today's 128 × 512, no slower")]
    [TestCase(512, 4096, 128, 512, TestName = "small-qwen2: the floor")]
    [TestCase(896, 32768, 219, 512)]
    [TestCase(1024, 32768, 250, 512)]
    [TestCase(1536, 32768, 188, 1024)]
    [TestCase(2048, 40960, 250, 1024)]
    [TestCase(3584, 32768, 219, 2048)]
    [TestCase(4096, 131072, 250, 2048, TestName = "8B class: exllamav3's 250 × 2048")]
    [TestCase(8192, 131072, 250, 2048, TestName = "70B class: capped at exllamav3's volume")]
    [TestCase(4096, 1024, 500, 1024, TestName = "rows never longer than max_position_embeddings")]
    public void ScalesWithHiddenSize(int hidden, int maxPositions, int rows, int cols) =>
        Assert.That(CalibrationVolume.For(hidden, maxPositions), Is.EqualTo((rows, cols)));

    [Test]
    public void TokensGrowWithHiddenSizeBetweenFloorAndCap()
    {
        long previous = 0;
        for (int hidden = 64; hidden <= 16384; hidden += 64)
        {
            var (rows, cols) = CalibrationVolume.For(hidden, 1 << 20);
            long tokens = (long)rows * cols;
            Assert.That(tokens, Is.InRange(CalibrationVolume.MinTokens, CalibrationVolume.MaxTokens + cols), $"hidden {hidden}");
            Assert.That(tokens, Is.GreaterThanOrEqualTo(Math.Min(CalibrationVolume.TokensPerHiddenUnit * hidden, CalibrationVolume.MaxTokens)), $"hidden {hidden}");
            Assert.That(tokens, Is.GreaterThanOrEqualTo(previous - cols), $"hidden {hidden}: no less than a smaller model, up to rounding to whole rows");
            Assert.That(cols, Is.InRange(CalibrationVolume.MinCols, CalibrationVolume.MaxCols));
            Assert.That(int.IsPow2(cols), $"hidden {hidden}: {cols}");
            previous = tokens;
        }
    }

    [Test]
    public void GivenValuesOverrideTheRuleEachOnItsOwn()
    {
        var config = ModelConfig.Load(RepoPaths.SampleModel);
        Assert.That(CalibrationVolume.Choose(null, null, config), Is.EqualTo(new CalibrationVolumeChoice(128, 512, "model")));
        Assert.That(CalibrationVolume.Choose(8, null, config), Is.EqualTo(new CalibrationVolumeChoice(8, 512, "model+given")));
        Assert.That(CalibrationVolume.Choose(null, 64, config), Is.EqualTo(new CalibrationVolumeChoice(128, 64, "model+given")));
        Assert.That(CalibrationVolume.Choose(8, 64, config), Is.EqualTo(new CalibrationVolumeChoice(8, 64, "given")));
    }
}
