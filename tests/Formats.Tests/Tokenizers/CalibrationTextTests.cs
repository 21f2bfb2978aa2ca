using System.Diagnostics;
using Converter.Formats.Tokenizers;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Formats.Tests.Tokenizers;

/// <summary>
/// The ~1.2 MB calibration text, as convert tokenizes it: it must survive encode → decode unchanged, and the
/// throughput is logged (ids themselves are checked against the Hugging Face library in HuggingFaceCaseTests).
/// </summary>
public sealed class CalibrationTextTests
{
    private static readonly Lazy<string> Text = new(() => File.ReadAllText(Path.Combine(RepoPaths.Samples, "data", "calibration.txt")));

    [TestCaseSource(typeof(TestTokenizers), nameof(TestTokenizers.Models))]
    public void RoundTripsAndLogsThroughput(string model)
    {
        // A fresh tokenizer, so that the first encode runs with an empty word cache.
        var tokenizer = Tokenizer.FromFile(TestTokenizers.TokenizerPath(model));
        var text = Text.Value;

        var cold = Stopwatch.StartNew();
        var ids = tokenizer.Encode(text, addSpecialTokens: false);
        cold.Stop();
        var warm = Stopwatch.StartNew();
        var again = tokenizer.Encode(text, addSpecialTokens: false);
        warm.Stop();
        var decodeTime = Stopwatch.StartNew();
        var decoded = tokenizer.Decode(ids);
        decodeTime.Stop();

        TestContext.Out.WriteLine($"{model}: {text.Length:N0} chars → {ids.Length:N0} tokens; encode "
            + $"{ids.Length / cold.Elapsed.TotalSeconds:N0} tokens/s cold, {ids.Length / warm.Elapsed.TotalSeconds:N0} warm; "
            + $"decode {ids.Length / decodeTime.Elapsed.TotalSeconds:N0} tokens/s");
        Assert.Multiple(() =>
        {
            Assert.That(again, Is.EqualTo(ids), "cached encode");
            Assert.That(decoded, Is.EqualTo(text), "decode(encode(text))");
            // Not a benchmark: a guard against the merge loop going quadratic (rand-mistral has no pre-tokenizer,
            // so its whole text is one BPE word; about a second is normal on a laptop core).
            Assert.That(cold.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)));
        });
    }
}
