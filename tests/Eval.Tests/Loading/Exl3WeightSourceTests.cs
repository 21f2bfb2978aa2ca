using Converter.Compute;
using Converter.Eval.Loading;
using Converter.Exl3;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Models.Modules;
using Converter.Models.Running;
using Converter.Regularize.Reconstruction;
using Converter.TestSupport;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Tests.Loading;

/// <summary>
/// Loading an EXL3 checkpoint gives each linear exactly the §4.3 reconstruction of its stored tensors with the codebook
/// its marker names, transposed and trimmed to the HF (out, in) layout; everything else loads as stored.
/// </summary>
public class Exl3WeightSourceTests
{
    private readonly CodebookTableCache _codebooks = new();

    [TestCase("rand-llama31", false, TestName = "TiedHeadQuantized")]
    [TestCase("rand-llama31", true, TestName = "TiedHeadFp16")]
    [TestCase("rand-qwen3", false, TestName = "Qwen3QkNorm")]
    [TestCase("rand-mistral", false, TestName = "UntiedHead")]
    public void EveryLinearIsTheReconstructionOfItsStoredTensors(string name, bool fp16Head)
    {
        using var dir = new TempDirectory();
        var stored = SyntheticExl3.Write(RepoPaths.TestModel(name), dir.Path, fp16Head);
        using var model = EvalModel.Open(dir.Path, _codebooks);
        Assert.That(model.IsQuantized, Is.True);
        Assert.That(model.Weights, Is.InstanceOf<Exl3WeightSource>());

        foreach (var module in model.Model.Modules)
        {
            module.Load(model.Weights);
            foreach (var linear in module.Linears)
            {
                if (stored.TryGetValue(linear.Name, out var q))
                    Assert.That(linear.Weight.Data, Is.EqualTo(ExpectedWeight(q, linear.OutFeatures, linear.InFeatures)), linear.Name);
                else
                    Assert.That(linear.Weight.Data, Is.EqualTo(model.Checkpoint.ReadFloat32(TensorNames.Weight(linear.Name))), linear.Name + " (fp16)");
            }
            module.Release();
        }
        Assert.That(stored.Values.Select(q => Exl3CodebookMarker.TensorOf(q.Codebook)).Distinct(), Is.EquivalentTo(new[] { null, "mcg", "mul1" }));
    }

    [Test]
    public void TiedHeadComesFromLmHeadNotTheEmbedding()
    {
        using var dir = new TempDirectory();
        SyntheticExl3.Write(RepoPaths.TestModel("rand-llama31"), dir.Path, fp16Head: true);
        using var model = EvalModel.Open(dir.Path, _codebooks);
        Assert.That(model.Model.Spec.TiedEmbeddings, Is.True);
        model.Model.Head.Load(model.Weights);
        var embedding = model.Checkpoint.ReadFloat32("model.embed_tokens.weight");
        Assert.That(model.Model.Head.Projection.Weight.Data, Is.EqualTo(embedding.Select(v => (float)(Half)(v * 0.5f)).ToArray()));
    }

    [Test]
    public void PaddedBiasIsTrimmedToTheLayer()
    {
        using var dir = new TempDirectory();
        // Llama with attention_bias: q/k/v/o carry a bias, stored fp16 and padded like the output dimension.
        var stored = SyntheticExl3.Write(RepoPaths.TestModel("rand-llama31"), dir.Path, fp16Head: false, c => c["attention_bias"] = true);
        using var model = EvalModel.Open(dir.Path, _codebooks);
        var q = ((SelfAttention)model.Model.Layers[0].Attention).K;
        model.Model.Layers[0].Load(model.Weights);
        Assert.That(stored[q.Name].Bias, Has.Length.EqualTo(SyntheticExl3.Pad(q.OutFeatures)));
        Assert.That(q.Bias, Is.EqualTo(stored[q.Name].Bias!.Take(q.OutFeatures).ToArray()));
    }

    [Test]
    public void MarkerValueIsTheMultiplierAndBadMarkersNameTheTensor()
    {
        Assert.That(Exl3CodebookMarker.SpecOf("mul1", 0xAD9A2EC5, "f", "m.x"), Is.EqualTo(CodebookSpec.Parse("mul1:0xAD9A2EC5")));
        Assert.That(Exl3CodebookMarker.SpecOf(null, 0xAD9A2EC5, "f", "m.x"), Is.EqualTo(CodebookSpec.Default(CodebookKind.ThreeInst)));
        Assert.That(Exl3CodebookMarker.SpecOf("mcg", 0xCBAC1FED, "f", "m.x"), Is.EqualTo(CodebookSpec.Default(CodebookKind.Mcg)));
        Assert.That(() => Exl3CodebookMarker.SpecOf("mcg", 2, "f", "m.x"),
            Throws.InstanceOf<SafetensorsFormatException>().With.Message.Contains("m.x.mcg").And.Message.Contains("even"));
        Assert.That(() => Exl3CodebookMarker.SpecOf("lcg", 1, "f", "m.x"),
            Throws.InstanceOf<SafetensorsFormatException>().With.Message.Contains("m.x").And.Message.Contains("unknown codebook marker"));
    }

    [Test]
    public void QuantizationSummaryCountsBitsWithScalesFromTheStoredTensors()
    {
        using var dir = new TempDirectory();
        var stored = SyntheticExl3.Write(RepoPaths.TestModel("rand-mistral"), dir.Path, fp16Head: false);
        using var model = EvalModel.Open(dir.Path, _codebooks);
        var layerLinears = model.Model.Layers.SelectMany(l => l.Linears).ToList();
        // §4.3: K·k·n bits of trellis plus 16·(k + n) of scales, per unpadded weight.
        double bits = layerLinears.Sum(l => { var q = stored[l.Name]; return (double)q.PaddedIn * q.PaddedOut * q.Bits + 16.0 * (q.PaddedIn + q.PaddedOut); });
        double weights = layerLinears.Sum(l => (double)l.InFeatures * l.OutFeatures);
        var summary = model.Quantization!;
        Assert.That(summary.BitsWithScales, Is.EqualTo(bits / weights).Within(1e-12));
        Assert.That(summary.ConfigBits, Is.EqualTo(3.0));
        Assert.That(summary.HeadBits, Is.EqualTo(stored["lm_head"].Bits));
        Assert.That(summary.Codebook, Is.EqualTo("mixed"));
        Assert.That(summary.Calibration, Is.Null, "the synthetic config records no calibration");
    }

    [Test]
    public void PlainCheckpointIsNotQuantizedAndForwardRunsOnTheReconstruction()
    {
        using (var plain = EvalModel.Open(RepoPaths.TestModel("rand-qwen3"), _codebooks))
        {
            Assert.That(plain.IsQuantized, Is.False);
            Assert.That(plain.Weights, Is.InstanceOf<CheckpointWeights>());
        }
        using var dir = new TempDirectory();
        SyntheticExl3.Write(RepoPaths.TestModel("rand-qwen3"), dir.Path, fp16Head: false);
        using var model = EvalModel.Open(dir.Path, _codebooks);
        var logits = ModelRunner.Run(model.Model, model.Weights, SequenceBatch.FromTokens([1, 5, 9, 200])).Logits;
        Assert.That(logits.Data.All(float.IsFinite), Is.True);
    }

    /// <summary>W (k, n) from §4.3, then HF (out, in) = Wᵀ without the padding, written out independently of the loader.</summary>
    private float[] ExpectedWeight(Exl3Linear q, int outFeatures, int inFeatures)
    {
        var w = LinearReconstruction.Reconstruct(q.Trellis, q.PaddedIn, q.PaddedOut, q.Bits, _codebooks.Get(q.Codebook).Values, q.Suh, q.Svh);
        var hf = new Matrix(outFeatures, inFeatures);
        for (int o = 0; o < outFeatures; o++)
        {
            for (int i = 0; i < inFeatures; i++)
                hf.Row(o)[i] = w[i * q.PaddedOut + o];
        }
        return hf.Data;
    }
}
