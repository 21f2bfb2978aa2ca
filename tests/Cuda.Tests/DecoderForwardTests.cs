using Converter.Compute;
using Converter.Cuda.Blas;
using Converter.Cuda.Models;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Models.Modules;
using Converter.Models.Rotary;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// The GPU forward (<see cref="CudaForwardBackend"/>) against the host pass on one decoder block of random weights
/// for variants covering every architecture feature, mixtures of experts included: outputs and the Hessian sums it
/// feeds must agree to FP32 rounding.
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class DecoderForwardTests : GpuFixture
{
    private CudaDenseAlgebra _algebra = null!;
    private CudaForwardBackend _forward = null!;
    private string _dir = null!;

    [OneTimeSetUp]
    public void Create()
    {
        _algebra = new CudaDenseAlgebra(Cuda);
        _forward = new CudaForwardBackend(_algebra);
        _dir = Directory.CreateTempSubdirectory("trellis-decoder-forward").FullName;
    }

    [OneTimeTearDown]
    public void Destroy()
    {
        _forward?.Dispose();
        _algebra?.Dispose();
        if (_dir is not null)
            Directory.Delete(_dir, recursive: true);
    }

    private static readonly RopeConfig DefaultRope = new(RopeType.Default, 10000.0);

    private static readonly TransformerSpec Llama = new()
    {
        ArchitectureName = "LlamaForCausalLM",
        HiddenSize = 256,
        IntermediateSize = 512,
        Layers = 1,
        Heads = 4,
        KvHeads = 2,
        HeadDim = 64,
        VocabSize = 64,
        NormEps = 1e-5f,
        RotaryDims = 64,
        LayerAttention = [new LayerAttention(null, DefaultRope)],
    };

    private static IEnumerable<TestCaseData> Variants()
    {
        yield return new TestCaseData(Llama, 3, 64).SetName("llama GQA, 3 rows × 64");
        // Qwen3: q/k norms, a head_dim that makes the query width differ from hidden, q/k/v bias.
        yield return new TestCaseData(Llama with { HiddenSize = 192, Heads = 8, KvHeads = 2, HeadDim = 32, RotaryDims = 32, QkNorm = QkNormPlacement.PerHead, QkvBias = true }, 2, 40)
            .SetName("qwen3-like qk-norm + bias, 2 rows × 40");
        // Mistral-style sliding window shorter than the rows; every bias present; plain multi-head attention.
        yield return new TestCaseData(Llama with { Heads = 4, KvHeads = 4, LayerAttention = [new LayerAttention(24, DefaultRope)], OutputBias = true, MlpBias = true, QkvBias = true }, 2, 70)
            .SetName("sliding window 24, biases, MHA, 2 rows × 70");
        // Gemma 2/3: (1 + w) norms around both halves, GELU-tanh, score scale and soft cap, embedding-free block, window.
        yield return new TestCaseData(Llama with
        {
            Norm = NormKind.RmsUnitOffset,
            BlockNorms = new BlockNorms("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"),
            Activation = MlpActivation.GeluTanh,
            AttentionScale = 0.1f,
            AttentionSoftCap = 5f,
            QkNorm = QkNormPlacement.PerHead,
            LayerAttention = [new LayerAttention(16, DefaultRope)],
        }, 2, 48).SetName("gemma-like sandwich norms, GELU, soft cap, window 16, 2 rows × 48");
        // GLM-4: partial interleaved rotary, fused gate_up, q/k/v bias, four norms.
        yield return new TestCaseData(Llama with
        {
            RotaryDims = 32,
            RotaryPairing = RotaryPairing.Interleaved,
            FusedGateUp = true,
            QkvBias = true,
            BlockNorms = new BlockNorms("input_layernorm", "post_self_attn_layernorm", "post_attention_layernorm", "post_mlp_layernorm"),
        }, 2, 40).SetName("glm4-like partial interleaved rope, fused gate_up, 2 rows × 40");
        // OLMo 2/3: post-norm only, q/k norm over the whole projection; Phi-3's fused qkv; a NoPE layer.
        yield return new TestCaseData(Llama with
        {
            BlockNorms = new BlockNorms(null, "post_attention_layernorm", null, "post_feedforward_layernorm"),
            QkNorm = QkNormPlacement.WholeProjection,
            FusedQkv = true,
            LayerAttention = [new LayerAttention(null, null)],
        }, 2, 40).SetName("olmo-like post-norm, whole-projection qk norm, fused qkv, NoPE, 2 rows × 40");
        // Cohere: LayerNorm, attention and MLP in parallel on one norm, interleaved rotary.
        yield return new TestCaseData(Llama with
        {
            Norm = NormKind.Layer,
            BlockNorms = new BlockNorms("input_layernorm", null, null, null),
            ParallelBlock = true,
            RotaryPairing = RotaryPairing.Interleaved,
        }, 2, 40).SetName("cohere-like LayerNorm, parallel block, 2 rows × 40");
    }

    /// <summary>Mixtral-like: softmax top-2 of 8 renormalized; experts narrower than hidden.</summary>
    private static readonly MixtureOfExperts Moe = new()
    {
        Router = new RouterSpec(8, 2, RouterScoring.Softmax, NormalizeTopK: true),
        ExpertIntermediateSize = 128,
        SparseLayers = [true],
        Module = "block_sparse_moe",
        ExpertNames = MlpNames.Mixtral,
    };

    private static IEnumerable<TestCaseData> MoeVariants()
    {
        yield return new TestCaseData(Llama with { Moe = Moe }, 2, 40).SetName("mixtral-like top-2 of 8, 2 rows × 40");
        // Qwen3-MoE with norm_topk_prob false and q/k norms; top-3 over few tokens leaves some experts idle in the plain pass.
        yield return new TestCaseData(Llama with
        {
            QkNorm = QkNormPlacement.PerHead,
            Moe = Moe with { Router = new RouterSpec(8, 3, RouterScoring.Softmax, NormalizeTopK: false), Module = "mlp", ExpertNames = MlpNames.Standard },
        }, 1, 5).SetName("qwen3-moe-like top-3 unnormalized, 1 row × 5");
        // GLM-4.5-like: sigmoid scores with a correction bias, renormalized with ε, scaled; a shared expert.
        yield return new TestCaseData(Llama with
        {
            Moe = Moe with
            {
                Router = new RouterSpec(8, 2, RouterScoring.Sigmoid, NormalizeTopK: true, Scale: 2.5f, NormEpsilon: 1e-20f),
                Module = "mlp",
                ExpertNames = MlpNames.Standard,
                CorrectionBias = "e_score_correction_bias",
                SharedIntermediateSize = 128,
            },
        }, 2, 24).SetName("glm4-moe-like sigmoid + bias, scaled, shared expert, 2 rows × 24");
        // gpt-oss-like: q/k/v/o biases, attention sinks, sliding window 16 with YaRN rope; router bias, top-2 of 8
        // softmaxed over the chosen; fused 3-D experts with biases and the clamped SwiGLU (weights large enough that
        // the clamps bind, see WriteLayer).
        var yarn = new RopeConfig(RopeType.Yarn, 150000.0, Yarn: new YarnRopeScaling(32, 32, 1, 4096, Truncate: false, AttentionFactor: 1 + 0.1 * Math.Log(32)));
        yield return new TestCaseData(Llama with
        {
            QkvBias = true,
            OutputBias = true,
            AttentionSinks = true,
            LayerAttention = [new LayerAttention(16, yarn)],
            Activation = MlpActivation.ClampedSwiGlu,
            Moe = Moe with
            {
                Module = "mlp",
                RouterModule = "router",
                RouterBias = true,
                FusedExperts = true,
                ExpertNames = MlpNames.Standard,
            },
        }, 2, 40).SetName("gpt-oss-like sinks, window 16, yarn, router bias, fused experts with clamped SwiGLU, 2 rows × 40");
        // DeepSeek-V3-like: latent attention with a q LoRA and biases (value heads narrower than the keys), and experts
        // limited to the best 2 of 4 groups.
        yield return new TestCaseData(Deepseek with
        {
            Moe = Moe with
            {
                Router = new RouterSpec(8, 2, RouterScoring.Sigmoid, NormalizeTopK: true, Scale: 2.5f, NormEpsilon: 1e-20f, Groups: 4, TopKGroups: 2),
                Module = "mlp",
                ExpertNames = MlpNames.Standard,
                CorrectionBias = "e_score_correction_bias",
                SharedIntermediateSize = 128,
            },
        }, 2, 24).SetName("deepseek-like latent attention with q LoRA, group-limited sigmoid routing, 2 rows × 24");
    }

    /// <summary>
    /// DeepSeek-V3's latent attention, small: q LoRA 96, kv latent 64, heads of nope 32 + rope 16 and values of 48,
    /// attention biases, interleaved rope pairs, a DeepSeek-style score scale.
    /// </summary>
    private static readonly TransformerSpec Deepseek = Llama with
    {
        Heads = 4,
        KvHeads = 4,
        HeadDim = 48,
        RotaryDims = 16,
        RotaryPairing = RotaryPairing.Interleaved,
        AttentionScale = 0.2f,
        LatentAttention = new LatentAttentionSpec(96, 64, 32, 16, 48, Bias: true),
    };

    private static IEnumerable<TestCaseData> LatentVariants()
    {
        yield return new TestCaseData(Deepseek, 3, 40).SetName("deepseek-like latent attention with q LoRA, dense MLP, 3 rows × 40");
        // DeepSeek-V2-Lite / the rand fixture: a plain q_proj, no biases, rope on halves.
        yield return new TestCaseData(Deepseek with
        {
            RotaryPairing = RotaryPairing.Halves,
            LatentAttention = new LatentAttentionSpec(null, 64, 32, 16, 48, Bias: false),
        }, 2, 33).SetName("deepseek-like latent attention without q LoRA, rope halves, 2 rows × 33");
    }

    private static RotaryEmbedding? RotaryOf(TransformerSpec spec) =>
        spec.LayerAttention[0].Rope is { } rope ? new RotaryEmbedding(rope, spec.RotaryDims) : null;

    [TestCaseSource(nameof(Variants))]
    [TestCaseSource(nameof(MoeVariants))]
    [TestCaseSource(nameof(LatentVariants))]
    public void BlockOutputAndHessiansMatchTheHost(TransformerSpec spec, int rows, int tokens)
    {
        var rng = new Random(spec.HiddenSize * 31 + tokens);
        var (host, gpu) = HostAndGpuBlocks(spec, rng, _forward);
        var ids = Enumerable.Range(0, rows).Select(_ => new int[tokens]).ToList();
        var x = new Matrix(rows * tokens, spec.HiddenSize, RandomValues(rng, rows * tokens * spec.HiddenSize, 1f));
        var batch = SequenceBatch.FromTokens(ids).WithValues(x);
        var input = (float[])x.Data.Clone();

        using var hostCapture = new HessianCapture(CpuDenseAlgebra.Instance);
        using var gpuCapture = new HessianCapture(_algebra);
        var expected = host.Forward(batch, hostCapture).RequireValues("expected");
        var actual = gpu.Forward(batch, gpuCapture).RequireValues("actual");

        Assert.That(actual.Data, Has.All.Matches<float>(float.IsFinite));
        Assert.That(Deviation.Relative<float>(actual.Data, expected.Data), Is.LessThan(2e-5), "block output");
        Assert.That(x.Data, Is.EqualTo(input), "input untouched");
        // Both blocks list their groups in the same order (a mixture of experts has one per expert's down).
        foreach (var (group, gpuGroup) in host.LinearGroups.Zip(gpu.LinearGroups))
        {
            var h = hostCapture.AccumulatorFor(group);
            var g = gpuCapture.AccumulatorFor(gpuGroup);
            Assert.That(g.Count, Is.EqualTo(h.Count), $"{group} rows");
            Assert.That(Deviation.Relative(g.Sum.Span, h.Sum.Span), Is.LessThan(2e-5), $"{group} Hessian");
        }

        // Without an observer a mixture of experts runs each expert on its chosen tokens only (the calibration pass
        // above ran every expert on every token); the two must give the same output on both backends.
        var plainHost = host.Forward(batch).RequireValues("plain expected");
        var plainGpu = gpu.Forward(batch).RequireValues("plain actual");
        Assert.That(Deviation.Relative<float>(plainGpu.Data, plainHost.Data), Is.LessThan(2e-5), "block output without an observer");
        Assert.That(Deviation.Relative<float>(plainHost.Data, expected.Data), Is.LessThan(2e-6), "calibration keeps the top-k output");
    }

    /// <summary>
    /// The same blocks with the fused attention kernel forced at these short rows (auto takes it from 512 tokens on):
    /// the output still equals the host's, to 1e-4 (the kernel sums in another order than the products).
    /// </summary>
    [TestCaseSource(nameof(Variants))]
    [TestCaseSource(nameof(MoeVariants))]
    [TestCaseSource(nameof(LatentVariants))]
    public void BlockOutputWithFusedAttentionMatchesTheHost(TransformerSpec spec, int rows, int tokens)
    {
        using var fused = new CudaForwardBackend(_algebra, new GpuForwardOptions(GpuMath.Fp32, GpuAttention.Fused));
        var (expected, actual) = HostAndGpu(spec, rows, tokens, fused);
        Assert.That(actual, Has.All.Matches<float>(float.IsFinite));
        Assert.That(Deviation.Relative<float>(actual, expected), Is.LessThan(1e-4), "block output");
    }

    /// <summary>
    /// TF32 tensor cores for the activation products (--gpu-math tf32): the block's hidden states stay within 1e-3
    /// (relative) of the host's FP32 ones; each product rounds its operands to 10 mantissa bits (~5e-4 each).
    /// </summary>
    [TestCaseSource(nameof(Variants))]
    [TestCaseSource(nameof(LatentVariants))]
    public void Tf32BlockOutputStaysCloseToFp32(TransformerSpec spec, int rows, int tokens)
    {
        using var tf32 = new CudaForwardBackend(_algebra, new GpuForwardOptions(GpuMath.Tf32));
        var (expected, actual) = HostAndGpu(spec, rows, tokens, tf32);
        Assert.That(actual, Has.All.Matches<float>(float.IsFinite));
        Assert.That(Deviation.Relative<float>(actual, expected), Is.LessThan(1e-3), "block output");
    }

    /// <summary>
    /// The math reaches cuBLAS: one linear of 1024 → 512 over 256 tokens is FP32-exact (to 1e-5) by default and off by
    /// TF32's rounding (between 5e-5 and 3e-3, relative) with --gpu-math tf32, and the Hessian observer's Gram sums
    /// stay FP32 either way (they are the quantizer's, not the forward's).
    /// </summary>
    [Test]
    public void Tf32ReachesTheLinearsAndSparesTheHessian()
    {
        var rng = new Random(3);
        var linear = new Linear("l", 1024, 512, hasBias: false);
        linear.SetParameters(new Matrix(512, 1024, RandomValues(rng, 512 * 1024, 1f / 32)), null);
        var x = new Matrix(256, 1024, RandomValues(rng, 256 * 1024, 1f));
        var host = new float[256 * 512];
        CpuDenseAlgebra.Instance.Linear(x.Data, linear.Weight.Data, default, host, 256, 512, 1024);
        using var tf32 = new CudaForwardBackend(_algebra, new GpuForwardOptions(GpuMath.Tf32));
        Assert.That(tf32.Options.Math, Is.EqualTo(GpuMath.Tf32));
        var fp32 = _forward.Run(x, (pass, a) => pass.Linear(linear, a));
        var fast = tf32.Run(x, (pass, a) => pass.Linear(linear, a));
        Assert.That(Deviation.Relative<float>(fp32.Data, host), Is.LessThan(1e-5), "FP32 by default");
        Assert.That(Deviation.Relative<float>(fast.Data, host), Is.GreaterThan(5e-5).And.LessThan(3e-3), "TF32 when asked (NVIDIA_TF32_OVERRIDE=0 would turn it off)");

        // The Gram sum of the same rows observed right after a TF32 product is the FP32 one: the tensor-core mode is
        // per call, not left on the cuBLAS handle the Hessian sums share.
        var group = new LinearGroup("g", LinearSite.AttentionInput, [linear]);
        using var fp32Capture = new HessianCapture(_algebra);
        using var tf32Capture = new HessianCapture(_algebra);
        _forward.Run(x, (pass, a) => { pass.Linear(linear, a); pass.Observe(fp32Capture, group, a); return a; });
        tf32.Run(x, (pass, a) => { pass.Linear(linear, a); pass.Observe(tf32Capture, group, a); return a; });
        Assert.That(tf32Capture.AccumulatorFor(group).Sum.ToArray(), Is.EqualTo(fp32Capture.AccumulatorFor(group).Sum.ToArray()));
    }

    /// <summary>The block's output on the host and on <paramref name="backend"/> for random weights and inputs.</summary>
    private (float[] Expected, float[] Actual) HostAndGpu(TransformerSpec spec, int rows, int tokens, CudaForwardBackend backend)
    {
        var rng = new Random(spec.HiddenSize * 31 + tokens);
        var (host, gpu) = HostAndGpuBlocks(spec, rng, backend);
        var ids = Enumerable.Range(0, rows).Select(_ => new int[tokens]).ToList();
        var x = new Matrix(rows * tokens, spec.HiddenSize, RandomValues(rng, rows * tokens * spec.HiddenSize, 1f));
        var batch = SequenceBatch.FromTokens(ids).WithValues(x);
        return (host.Forward(batch).RequireValues("expected").Data, gpu.Forward(batch).RequireValues("actual").Data);
    }

    [Test]
    public void RowsWithNonFiniteInputsAreDroppedFromTheHessianAsOnTheHost()
    {
        var rng = new Random(7);
        using var reader = WriteLayer(Llama, rng);
        var rotary = RotaryOf(Llama);
        var gpu = new DecoderBlock(0, Llama, rotary, _algebra, _forward);
        gpu.Load(reader);
        var x = new Matrix(2 * 16, Llama.HiddenSize, RandomValues(rng, 2 * 16 * Llama.HiddenSize, 1f));
        x.Row(5)[3] = float.PositiveInfinity;
        var batch = SequenceBatch.FromTokens([new int[16], new int[16]]).WithValues(x);
        using var capture = new HessianCapture(_algebra);
        gpu.Forward(batch, capture);
        var qkv = capture.AccumulatorFor(gpu.LinearGroups[0]);
        // Token 5's normed input is non-finite: dropped and counted, like HessianAccumulator.Add on the host.
        Assert.That(qkv.DroppedRows, Is.GreaterThanOrEqualTo(1));
        Assert.That(qkv.Count + qkv.DroppedRows, Is.EqualTo(32));
        Assert.That(qkv.Sum.ToArray(), Has.All.Matches<double>(double.IsFinite));
    }

    /// <summary>
    /// The drift target's capture on the device (<see cref="IDriftObserver"/>: the original stream's group inputs kept as
    /// device copies, each paired with the quantized stream's there) gives the host's Hessians and cross sums; a
    /// quantized row with a non-finite value sends that chunk through host copies, where the held original rows come
    /// down to be paired; and two equal streams add no drift.
    /// </summary>
    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    public void DriftCaptureOnTheDeviceMatchesTheHost(bool nonFinite, bool sameStreams)
    {
        var rng = new Random(nonFinite ? 19 : 17);
        var (host, gpu) = HostAndGpuBlocks(Llama, rng, _forward);
        int rows = 2, tokens = 24, width = Llama.HiddenSize;
        var ids = Enumerable.Range(0, rows).Select(_ => new int[tokens]).ToList();
        var x = RandomValues(rng, rows * tokens * width, 1f);
        var drifted = sameStreams ? (float[])x.Clone() : x.Select(v => v + 0.05f * (float)(rng.NextDouble() * 2 - 1)).ToArray();
        if (nonFinite)
            drifted[7 * width + 3] = float.NaN;
        var originalBatch = SequenceBatch.FromTokens(ids).WithValues(new Matrix(rows * tokens, width, x));
        var quantizedBatch = SequenceBatch.FromTokens(ids).WithValues(new Matrix(rows * tokens, width, drifted));

        using var hostHessians = new HessianCapture(CpuDenseAlgebra.Instance);
        using var hostDrift = new DriftCapture(hostHessians, CpuDenseAlgebra.Instance);
        using var gpuHessians = new HessianCapture(_algebra);
        using var gpuDrift = new DriftCapture(gpuHessians, _algebra);
        host.Forward(originalBatch, hostDrift.Original);
        host.Forward(quantizedBatch, hostDrift);
        gpu.Forward(originalBatch, gpuDrift.Original);
        gpu.Forward(quantizedBatch, gpuDrift);

        foreach (var (group, gpuGroup) in host.LinearGroups.Zip(gpu.LinearGroups))
        {
            var h = hostHessians.AccumulatorFor(group);
            var g = gpuHessians.AccumulatorFor(gpuGroup);
            Assert.That(g.Count, Is.EqualTo(h.Count), $"{group} Hessian rows");
            Assert.That(Deviation.Relative(g.Sum.Span, h.Sum.Span), Is.LessThan(2e-5), $"{group} Hessian");
            var hc = hostDrift.For(group);
            var gc = gpuDrift.For(gpuGroup);
            Assert.That(gc.Count, Is.EqualTo(hc.Count), $"{group} cross rows");
            Assert.That(gc.AnyDrift, Is.EqualTo(hc.AnyDrift).And.EqualTo(!sameStreams), $"{group} drift");
            Assert.That(gc.Columns, Is.EqualTo(hc.Columns), $"{group} cross sum's form");
            if (!sameStreams)
                Assert.That(Deviation.Relative<double>(gc.Mean(), hc.Mean()), Is.LessThan(1e-4), $"{group} cross sum");
        }
        // down_proj (fewer outputs than inputs) sums its cross term projected by its weight (DriftAccumulator.Projects).
        Assert.That(host.LinearGroups.Where(g => hostDrift.For(g).Projection is not null).Select(g => g.Site), Is.EqualTo(new[] { LinearSite.MlpOutput }));
        Assert.That(hostHessians.AccumulatorFor(host.LinearGroups[0]).DroppedRows, Is.EqualTo(nonFinite ? 1 : 0));
    }

    /// <summary>
    /// A sequential capture with the drift target on mixtures of experts and latent attention: for each sublayer, both
    /// streams run only as far as that sublayer's groups (<see cref="DecoderBlock.Capture"/>), their inputs paired on
    /// the device, and the Hessians and cross sums equal the host's.
    /// </summary>
    [TestCaseSource(nameof(MoeVariants))]
    [TestCaseSource(nameof(LatentVariants))]
    public void SequentialDriftCaptureOfEveryBlockKindMatchesTheHost(TransformerSpec spec, int rows, int tokens)
    {
        var rng = new Random(spec.HiddenSize * 7 + tokens);
        var (host, gpu) = HostAndGpuBlocks(spec, rng, _forward);
        int width = spec.HiddenSize;
        var ids = Enumerable.Range(0, rows).Select(_ => new int[tokens]).ToList();
        var x = RandomValues(rng, rows * tokens * width, 1f);
        var drifted = x.Select(v => v + 0.05f * (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var originalBatch = SequenceBatch.FromTokens(ids).WithValues(new Matrix(rows * tokens, width, x));
        var quantizedBatch = SequenceBatch.FromTokens(ids).WithValues(new Matrix(rows * tokens, width, drifted));

        foreach (var sublayer in host.LinearGroups.Select(g => g.Sublayer).Distinct().Order())
        {
            var hostGroups = host.LinearGroups.Where(g => g.Sublayer == sublayer).ToHashSet();
            var gpuGroups = gpu.LinearGroups.Where(g => g.Sublayer == sublayer).ToHashSet();
            using var hostHessians = new HessianCapture(CpuDenseAlgebra.Instance, hostGroups);
            using var hostDrift = new DriftCapture(hostHessians, CpuDenseAlgebra.Instance);
            using var gpuHessians = new HessianCapture(_algebra, gpuGroups);
            using var gpuDrift = new DriftCapture(gpuHessians, _algebra);
            host.Capture(originalBatch, hostDrift.Original);
            host.Capture(quantizedBatch, hostDrift);
            gpu.Capture(originalBatch, gpuDrift.Original);
            gpu.Capture(quantizedBatch, gpuDrift);
            foreach (var (group, gpuGroup) in host.LinearGroups.Zip(gpu.LinearGroups).Where(p => hostGroups.Contains(p.First)))
            {
                var h = hostHessians.AccumulatorFor(group);
                var g = gpuHessians.AccumulatorFor(gpuGroup);
                Assert.That(g.Count, Is.EqualTo(h.Count).And.GreaterThan(0), $"{group} Hessian rows");
                Assert.That(Deviation.Relative(g.Sum.Span, h.Sum.Span), Is.LessThan(2e-5), $"{group} Hessian");
                var hc = hostDrift.For(group);
                var gc = gpuDrift.For(gpuGroup);
                Assert.That(gc.Count, Is.EqualTo(hc.Count), $"{group} cross rows");
                Assert.That(gc.AnyDrift, Is.EqualTo(hc.AnyDrift).And.True, $"{group} drift");
                Assert.That(Deviation.Relative<double>(gc.Mean(), hc.Mean()), Is.LessThan(1e-4), $"{group} cross sum");
            }
        }
    }

    /// <summary>One block of <paramref name="spec"/> on the host and one on <paramref name="backend"/>, both loaded with the same random weights (<see cref="WriteLayer"/>, drawn from <paramref name="rng"/>).</summary>
    private (DecoderBlock Host, DecoderBlock Gpu) HostAndGpuBlocks(TransformerSpec spec, Random rng, CudaForwardBackend backend)
    {
        using var reader = WriteLayer(spec, rng);
        var rotary = RotaryOf(spec);
        var host = new DecoderBlock(0, spec, rotary);
        var gpu = new DecoderBlock(0, spec, rotary, _algebra, backend);
        host.Load(reader);
        gpu.Load(reader);
        return (host, gpu);
    }

    /// <summary>One decoder layer's tensors (HF names, float32) in a safetensors file, weights ~ N(0, 1/in).</summary>
    private SafetensorsFile WriteLayer(TransformerSpec spec, Random rng)
    {
        var writer = new SafetensorsWriter();
        var block = new DecoderBlock(0, spec, RotaryOf(spec));
        // Latent attention's kv_b_proj is in no group (it stays unquantized) but is a weight of the block all the same.
        var linears = block.Attention is LatentAttention latent ? block.Linears.Append(latent.KvB) : block.Linears;
        foreach (var linear in linears.DistinctBy(l => l.WeightTensor))
        {
            if (linear.Expert is { } expert)
            {
                // gpt-oss's 3-D expert tensor [experts, in, columns] and its bias [experts, columns], once for all
                // experts; weights ~8× the usual scale so that gate and up pass the clamped SwiGLU's limit of 7.
                int size = expert.Experts * linear.InFeatures * expert.Columns;
                writer.AddFloat32(linear.WeightTensor, [expert.Experts, linear.InFeatures, expert.Columns],
                    RandomValues(rng, size, 8f / MathF.Sqrt(linear.InFeatures)));
                writer.AddFloat32(expert.BiasTensor!, [expert.Experts, expert.Columns], RandomValues(rng, expert.Experts * expert.Columns, 0.5f));
                continue;
            }
            // A fused source tensor (qkv_proj, gate_up_proj) is written once with all its rows.
            int rows = linear.Fused?.Rows ?? linear.OutFeatures;
            writer.AddFloat32(linear.WeightTensor, [rows, linear.InFeatures],
                RandomValues(rng, rows * linear.InFeatures, 1f / MathF.Sqrt(linear.InFeatures)));
            if (linear.BiasTensor is { } bias)
                writer.AddFloat32(bias, [linear.OutFeatures], RandomValues(rng, linear.OutFeatures, 0.1f));
        }
        if (block.FeedForward is SparseMoe moe)
        {
            // Router logits of a few units, so that top-k choices are clear-cut rather than near ties.
            writer.AddFloat32(moe.Router.WeightTensor, [moe.Router.OutFeatures, moe.Router.InFeatures],
                RandomValues(rng, moe.Router.OutFeatures * moe.Router.InFeatures, 4f / MathF.Sqrt(moe.Router.InFeatures)));
            foreach (var bias in moe.OtherTensors.Where(n => n != moe.Router.WeightTensor))
                writer.AddFloat32(bias, [moe.Router.OutFeatures], RandomValues(rng, moe.Router.OutFeatures, 0.05f));
        }
        if (spec.AttentionSinks)
            writer.AddFloat32(((SelfAttention)block.Attention).SinksTensor, [spec.Heads], RandomValues(rng, spec.Heads, 2f));
        foreach (var name in block.TensorNames.Where(n => n.Contains("norm", StringComparison.Ordinal)))
        {
            // Block norms (GLM-4's post_self_attn_layernorm too) are hidden-wide; q/k norms live under self_attn.
            int width = !name.Contains(".self_attn.", StringComparison.Ordinal) ? spec.HiddenSize
                : name.EndsWith("q_a_layernorm.weight", StringComparison.Ordinal) ? spec.LatentAttention!.QueryRank!.Value
                : name.EndsWith("kv_a_layernorm.weight", StringComparison.Ordinal) ? spec.LatentAttention!.KvRank
                : spec.QkNorm == QkNormPlacement.PerHead ? spec.HeadDim
                : name.Contains("q_norm", StringComparison.Ordinal) ? spec.QueryWidth : spec.KeyValueWidth;
            writer.AddFloat32(name, [width], RandomValues(rng, width, 0.1f).Select(v => 1f + v).ToArray());
        }
        string path = Path.Combine(_dir, $"layer-{Guid.NewGuid():N}.safetensors");
        writer.Write(path);
        return SafetensorsFile.Open(path);
    }

    private static float[] RandomValues(Random rng, int count, float scale)
    {
        var v = new float[count];
        for (int i = 0; i < count; i++)
            v[i] = (float)(rng.NextDouble() * 2 - 1) * scale * 1.7320508f;
        return v;
    }
}
