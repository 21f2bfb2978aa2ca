using Converter.Compute;
using Converter.Formats.Safetensors;
using Converter.Models.Forward;
using Converter.Models.Modules;
using Converter.TestSupport;

namespace Converter.Models.Tests.Models;

/// <summary>
/// A mixture-of-experts MLP on the host against a token-by-token reference, with experts no token chooses, and its
/// calibration pass: every expert's down projection is shown every row while the output stays the top-k mixture.
/// </summary>
public class MixtureOfExpertsTests
{
    private const int Hidden = 32, Intermediate = 48, Experts = 4;

    private static TransformerSpec Spec(int topK, bool normalize) => Spec(new MixtureOfExperts
    {
        Router = new RouterSpec(Experts, topK, RouterScoring.Softmax, normalize),
        ExpertIntermediateSize = Intermediate,
        SparseLayers = [true],
        Module = "mlp",
    });

    /// <summary>GLM-4.5's: sigmoid scores chosen with a correction bias, renormalized, scaled, a shared expert.</summary>
    private static TransformerSpec SigmoidSpec() => Spec(new MixtureOfExperts
    {
        Router = new RouterSpec(Experts, 2, RouterScoring.Sigmoid, NormalizeTopK: true, Scale: 2.5f, NormEpsilon: 1e-20f),
        ExpertIntermediateSize = Intermediate,
        SparseLayers = [true],
        Module = "mlp",
        SharedIntermediateSize = 40,
        CorrectionBias = "e_score_correction_bias",
    });

    private static TransformerSpec Spec(MixtureOfExperts moe) => new()
    {
        ArchitectureName = "test",
        HiddenSize = Hidden,
        IntermediateSize = 64,
        Layers = 1,
        Heads = 2,
        KvHeads = 2,
        HeadDim = 16,
        VocabSize = 16,
        NormEps = 1e-6f,
        RotaryDims = 16,
        LayerAttention = [new LayerAttention(null, null)],
        Moe = moe,
    };

    /// <summary>The block's MoE with random weights loaded from a file written here.</summary>
    private static SparseMoe Load(TransformerSpec spec, TempDirectory dir, int seed)
    {
        var moe = new SparseMoe("model.layers.0", spec);
        var rng = new Random(seed);
        var writer = new SafetensorsWriter();
        foreach (var linear in moe.LinearGroups.SelectMany(g => g.Linears).Append(moe.Router))
            writer.AddFloat32(linear.WeightTensor, [linear.OutFeatures, linear.InFeatures], Random(rng, linear.OutFeatures * linear.InFeatures, 1f / MathF.Sqrt(linear.InFeatures)));
        foreach (var bias in moe.OtherTensors.Where(n => n != moe.Router.WeightTensor))
            writer.AddFloat32(bias, [Experts], Random(rng, Experts, 0.3f));
        var path = dir.File($"moe-{seed}.safetensors");
        writer.Write(path);
        using var file = SafetensorsFile.Open(path);
        moe.Load(new CheckpointWeights(file));
        return moe;
    }

    private static float[] Random(Random rng, int count, float scale) =>
        Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale * 1.7320508f).ToArray();

    private static Matrix Run(SparseMoe moe, Matrix x, ILinearInputObserver? observer) =>
        HostForwardPass.Instance.Run(x, (pass, input) => moe.Forward(pass, input, observer));

    /// <summary>
    /// Σ over the token's chosen experts of weight · down(SiLU(gate·x) ⊙ up·x), plus the shared expert's output, in
    /// double (the choice itself by <see cref="TopKRouter"/>, which its own tests check).
    /// </summary>
    private static double[] Reference(SparseMoe moe, RouterSpec router, ReadOnlySpan<float> x, float[]? bias = null)
    {
        var logits = Product(moe.Router.Weight, x);
        var experts = new int[router.TopK];
        var weights = new float[router.TopK];
        TopKRouter.Select(logits.Select(v => (float)v).ToArray(), router, bias ?? [], experts, weights);
        var y = new double[Hidden];
        for (int j = 0; j < router.TopK; j++)
        {
            var d = MlpOf(moe.Experts[experts[j]], x);
            for (int c = 0; c < Hidden; c++)
                y[c] += weights[j] * d[c];
        }
        if (moe.Shared is { } shared)
        {
            var d = MlpOf(shared, x);
            for (int c = 0; c < Hidden; c++)
                y[c] += d[c];
        }
        return y;
    }

    private static double[] MlpOf(GatedMlp mlp, ReadOnlySpan<float> x)
    {
        var g = Product(mlp.Gate.Weight, x);
        var u = Product(mlp.Up.Weight, x);
        return Product(mlp.Down.Weight, g.Select((v, i) => (float)(v / (1 + Math.Exp(-v)) * u[i])).ToArray());
    }

    private static double[] Product(Matrix w, ReadOnlySpan<float> x)
    {
        var y = new double[w.Rows];
        for (int r = 0; r < w.Rows; r++)
        {
            var row = w.Row(r);
            for (int c = 0; c < w.Cols; c++)
                y[r] += (double)row[c] * x[c];
        }
        return y;
    }

    [TestCase(2, true, 40)]
    [TestCase(2, false, 40)]
    [TestCase(1, true, 3)]
    public void OutputIsTheWeightedSumOfTheChosenExperts(int topK, bool normalize, int tokens)
    {
        using var dir = new TempDirectory();
        var spec = Spec(topK, normalize);
        var moe = Load(spec, dir, seed: tokens + topK);
        var x = new Matrix(tokens, Hidden, Random(new Random(tokens), tokens * Hidden, 1f));
        var output = Run(moe, x, null);
        for (int t = 0; t < tokens; t++)
        {
            var expected = Reference(moe, spec.Moe!.Router, x.Row(t));
            for (int c = 0; c < Hidden; c++)
                Assert.That(output.Row(t)[c], Is.EqualTo(expected[c]).Within(1e-5), $"token {t}, column {c}");
        }
    }

    [Test]
    public void CalibrationShowsEveryExpertEveryRowAndKeepsTheTopKOutput()
    {
        using var dir = new TempDirectory();
        var spec = Spec(topK: 1, normalize: true);
        var moe = Load(spec, dir, seed: 5);
        // Three tokens and top-1 of four experts: at least one expert gets no token in a plain forward.
        var x = new Matrix(3, Hidden, Random(new Random(9), 3 * Hidden, 1f));
        var plain = Run(moe, x, null);
        var observer = new Recorder();
        var calibrated = Run(moe, x, observer);

        Assert.That(calibrated.Data, Is.EqualTo(plain.Data).Within(1e-6), "calibration output is the top-k mixture");
        Assert.That(observer.Calls.Select(c => (c.Group.Site, c.Input.Rows)), Is.EqualTo(
            new[] { (LinearSite.ExpertInput, 3) }.Concat(Enumerable.Repeat((LinearSite.ExpertOutput, 3), Experts))));
        Assert.That(observer.Calls[0].Group.Linears, Has.Count.EqualTo(2 * Experts), "one group holds every expert's gate and up");
        for (int e = 0; e < Experts; e++)
        {
            // Expert e's down input is its own act(gate)·up of every token, whether or not the token chose it.
            var down = observer.Calls[1 + e];
            Assert.That(down.Group.Linears.Single(), Is.SameAs(moe.Experts[e].Down));
            for (int t = 0; t < 3; t++)
            {
                var g = Product(moe.Experts[e].Gate.Weight, x.Row(t));
                var u = Product(moe.Experts[e].Up.Weight, x.Row(t));
                for (int i = 0; i < Intermediate; i++)
                    Assert.That(down.Input.Row(t)[i], Is.EqualTo(g[i] / (1 + Math.Exp(-g[i])) * u[i]).Within(1e-5));
            }
        }
    }

    [Test]
    public void AnExpertNoTokenChoosesIsSkipped()
    {
        using var dir = new TempDirectory();
        var spec = Spec(topK: 1, normalize: true);
        var moe = Load(spec, dir, seed: 11);
        // Router rows of expert 2 and 3 far below the others: every token picks expert 0 or 1.
        var w = moe.Router.Weight.Clone();
        var x = new Matrix(8, Hidden, Random(new Random(3), 8 * Hidden, 1f).Select(Math.Abs).ToArray());
        for (int c = 0; c < Hidden; c++)
        {
            w.Row(2)[c] = -10f;
            w.Row(3)[c] = -10f;
        }
        moe.Router.ReplaceWeight(w);
        var routed = Run(moe, x, null);
        Assert.That(routed.Data, Has.All.Matches<float>(float.IsFinite));
        for (int t = 0; t < 8; t++)
        {
            var expected = Reference(moe, spec.Moe!.Router, x.Row(t));
            for (int c = 0; c < Hidden; c++)
                Assert.That(routed.Row(t)[c], Is.EqualTo(expected[c]).Within(1e-5));
        }
        var observer = new Recorder();
        Run(moe, x, observer);
        Assert.That(observer.Calls.Count(c => c.Group.Site == LinearSite.ExpertOutput), Is.EqualTo(Experts), "calibration still shows the unchosen experts");
    }

    [Test]
    public void SigmoidRoutingWithCorrectionBiasAndASharedExpert()
    {
        using var dir = new TempDirectory();
        var spec = SigmoidSpec();
        var moe = Load(spec, dir, seed: 21);
        Assert.That(moe.OtherTensors, Is.EqualTo(new[] { "model.layers.0.mlp.gate.weight", "model.layers.0.mlp.gate.e_score_correction_bias" }));
        // The shared expert is a dense MLP of its own groups after the routed experts'.
        Assert.That(moe.LinearGroups.Select(g => g.Site).TakeLast(2), Is.EqualTo(new[] { LinearSite.MlpInput, LinearSite.MlpOutput }));
        Assert.That(moe.LinearGroups[^1].Linears.Single().Name, Is.EqualTo("model.layers.0.mlp.shared_experts.down_proj"));

        using var file = SafetensorsFile.Open(dir.File("moe-21.safetensors"));
        var bias = file.ReadFloat32("model.layers.0.mlp.gate.e_score_correction_bias");
        var x = new Matrix(30, Hidden, Random(new Random(4), 30 * Hidden, 1f));
        var output = Run(moe, x, null);
        for (int t = 0; t < x.Rows; t++)
        {
            var expected = Reference(moe, spec.Moe!.Router, x.Row(t), bias);
            for (int c = 0; c < Hidden; c++)
                Assert.That(output.Row(t)[c], Is.EqualTo(expected[c]).Within(1e-5), $"token {t}, column {c}");
        }
        var observer = new Recorder();
        Assert.That(Run(moe, x, observer).Data, Is.EqualTo(output.Data).Within(1e-6));
        Assert.That(observer.Calls.Select(c => c.Group.Site).TakeLast(2), Is.EqualTo(new[] { LinearSite.MlpInput, LinearSite.MlpOutput }));
    }

    /// <summary>
    /// A capture (the block's output unwanted) shows every group, routed experts' and the shared expert's, what the
    /// calibration forward shows it, to the bit, without the down products or the mixing.
    /// </summary>
    [Test]
    public void ACaptureShowsTheForwardsInputsWithoutTheOutput()
    {
        using var dir = new TempDirectory();
        var moe = Load(SigmoidSpec(), dir, seed: 23);
        var x = new Matrix(12, Hidden, Random(new Random(8), 12 * Hidden, 1f));
        var forward = new Recorder();
        Run(moe, x, forward);
        var capture = new Recorder();
        HostForwardPass.Instance.Run(x, (pass, input) =>
        {
            moe.Capture(pass, input, capture);
            return input;
        });
        Assert.That(capture.Calls.Select(c => c.Group), Is.EqualTo(forward.Calls.Select(c => c.Group)));
        for (int i = 0; i < forward.Calls.Count; i++)
            Assert.That(capture.Calls[i].Input.Data, Is.EqualTo(forward.Calls[i].Input.Data), forward.Calls[i].Group.ToString());
    }

    private sealed class Recorder : ILinearInputObserver
    {
        public List<(LinearGroup Group, Matrix Input)> Calls { get; } = [];

        public void OnLinearInput(LinearGroup group, Matrix input) => Calls.Add((group, input.Clone()));
    }
}
