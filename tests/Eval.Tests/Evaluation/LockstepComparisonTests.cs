using Converter.Eval.Evaluation;
using Converter.Eval.Loading;
using Converter.Formats.IO;
using Converter.Formats.Safetensors;
using Converter.TestSupport;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Tests.Evaluation;

/// <summary>The lockstep comparison and the perplexity run on real models.</summary>
public class LockstepComparisonTests
{
    private readonly CodebookTableCache _codebooks = new();

    [Test]
    public void AModelAgainstItselfHasZeroErrorZeroKlAndFullAgreement()
    {
        using var a = EvalModel.Open(RepoPaths.SampleModel, _codebooks);
        using var b = EvalModel.Open(RepoPaths.SampleModel, _codebooks);
        var input = EvalInput.Load(b, TextSource.FromFile(Path.Combine(RepoPaths.Samples, "data", "eval-heldout.txt")), rows: 2, length: 32);
        var steps = new List<string>();
        var result = LockstepComparison.Run(b, [a], input.Rows, topK: 5, input.Vocabulary, new Progress(steps))[0];

        Assert.That(steps, Is.EqualTo(b.Model.Modules.Select(m => m.Name)));
        Assert.That(result.Modules.Select(m => m.Name), Is.EqualTo(b.Model.Modules.SkipLast(1).Select(m => m.Name)));
        Assert.That(result.Modules.Select(m => m.RfnErr), Is.All.EqualTo(0.0));
        var l = result.Logits;
        Assert.That((l.KlAb, l.KlBa, l.KlAbMedian, l.KlAbP90), Is.EqualTo((0.0, 0.0, 0.0, 0.0)));
        Assert.That(l.TopkAgreement, Is.All.EqualTo(1.0));
        Assert.That(l.PplA, Is.EqualTo(l.PplB));
        Assert.That(l.PplA, Is.GreaterThan(1).And.LessThan(1000));
        Assert.That((l.Tokens, l.Predicted), Is.EqualTo((64L, 62L)));
        Assert.That(b.Model.Modules.Any(m => m.IsLoaded) || a.Model.Modules.Any(m => m.IsLoaded), Is.False, "every module released");
    }

    [Test]
    public void ThreeModelsInOneRunMatchSeparateRuns()
    {
        // A quantized model compared alone and together with another must give the same figures: the reference
        // state is shared, each test model keeps its own.
        using var dir = new TempDirectory();
        Loading.SyntheticExl3.Write(RepoPaths.TestModel("rand-llama31"), dir.Path, fp16Head: false);
        using var reference = EvalModel.Open(RepoPaths.TestModel("rand-llama31"), _codebooks);
        using var quant = EvalModel.Open(dir.Path, _codebooks);
        using var same = EvalModel.Open(RepoPaths.TestModel("rand-llama31"), _codebooks);
        var rows = new[] { Enumerable.Range(0, 24).Select(i => i * 37 % 2000).ToArray(), Enumerable.Range(0, 24).Select(i => i * 11 % 2000).ToArray() };

        var alone = LockstepComparison.Run(reference, [quant], rows, 3, 2048)[0];
        var together = LockstepComparison.Run(reference, [same, quant], rows, 3, 2048);
        Assert.That(together[1].Logits.KlAb, Is.EqualTo(alone.Logits.KlAb));
        Assert.That(together[1].Modules, Is.EqualTo(alone.Modules));
        Assert.That(together[0].Logits.KlAb, Is.Zero);
        Assert.That(alone.Logits.KlAb, Is.GreaterThan(0.01), "random trellis weights are nothing like the model's");
        Assert.That(alone.Quantization, Is.Not.Null);
    }

    [Test]
    public void PerplexityOfTheReferenceInputMatchesTheReferenceLogits()
    {
        // tests/data/reference/tiny-llama.public.safetensors: transformers' float32 logits for a 128-token input.
        using var reference = SafetensorsFile.Open(Path.Combine(RepoPaths.Reference, "tiny-llama.public.safetensors"));
        var ids = reference.ReadRaw<long>("input_ids").Select(x => checked((int)x)).ToArray();
        var logits = reference.ReadFloat32("logits");
        int vocab = (int)reference.Info("logits").Shape[1];
        double logProbSum = 0;
        for (int t = 0; t + 1 < ids.Length; t++)
        {
            var row = logits.AsSpan(t * vocab, vocab);
            double max = double.NegativeInfinity, sum = 0;
            foreach (var v in row)
                max = Math.Max(max, v);
            foreach (var v in row)
                sum += Math.Exp(v - max);
            logProbSum += row[ids[t + 1]] - max - Math.Log(sum);
        }
        double expected = Math.Exp(-logProbSum / (ids.Length - 1));

        using var model = EvalModel.Open(RepoPaths.SampleModel, _codebooks);
        var result = PerplexityEvaluation.Run(model, [ids], model.LoadTokenizer().VocabSize);
        TestContext.Out.WriteLine($"reference logits PPL {expected:F4}, ours {result.Ppl:F4}");
        Assert.That(result.Ppl, Is.EqualTo(expected).Within(0.1).Percent);
        Assert.That((result.Rows, result.Tokens, result.Scored), Is.EqualTo((1, 128L, 127L)));
    }

    [Test]
    public void IncompatibleModelsAreRefusedNamingTheDirectory()
    {
        using var reference = EvalModel.Open(RepoPaths.SampleModel, _codebooks);
        using var other = EvalModel.Open(RepoPaths.TestModel("rand-mistral"), _codebooks);
        Assert.That(() => LockstepComparison.Run(reference, [other], [[1, 2, 3]], 1, 2048),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains("rand-mistral").And.Message.Contains("do not match"));
    }

    private sealed class Progress(List<string> steps) : IProgress<string>
    {
        public void Report(string value) => steps.Add(value);
    }
}
