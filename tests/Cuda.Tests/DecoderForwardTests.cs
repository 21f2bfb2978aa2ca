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
/// The GPU decoder block (<see cref="CudaDecoderForward"/>) against the host block on random weights of several
/// Llama-family variants: outputs and the four Hessian sums it feeds must agree to FP32 rounding.
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class DecoderForwardTests : GpuFixture
{
    private CudaDenseAlgebra _algebra = null!;
    private CudaDecoderForward _forward = null!;
    private string _dir = null!;

    [OneTimeSetUp]
    public void Create()
    {
        _algebra = new CudaDenseAlgebra(Cuda);
        _forward = new CudaDecoderForward(_algebra);
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

    private static readonly TransformerSpec Llama = new("LlamaForCausalLM", HiddenSize: 256, IntermediateSize: 512, Layers: 1, Heads: 4, KvHeads: 2,
        HeadDim: 64, VocabSize: 64, RmsNormEps: 1e-5f, QkvBias: false, OutputBias: false, MlpBias: false, QkNorm: false, TiedEmbeddings: false,
        SlidingWindow: null, Rope: new RopeConfig(RopeType.Default, 10000.0));

    private static IEnumerable<TestCaseData> Variants()
    {
        yield return new TestCaseData(Llama, 3, 64).SetName("llama GQA, 3 rows × 64");
        // Qwen3: q/k norms, a head_dim that makes the query width differ from hidden, q/k/v bias.
        yield return new TestCaseData(Llama with { HiddenSize = 192, Heads = 8, KvHeads = 2, HeadDim = 32, QkNorm = true, QkvBias = true }, 2, 40)
            .SetName("qwen3-like qk-norm + bias, 2 rows × 40");
        // Mistral-style sliding window shorter than the rows; every bias present; plain multi-head attention.
        yield return new TestCaseData(Llama with { Heads = 4, KvHeads = 4, SlidingWindow = 24, OutputBias = true, MlpBias = true, QkvBias = true }, 2, 70)
            .SetName("sliding window 24, biases, MHA, 2 rows × 70");
    }

    [TestCaseSource(nameof(Variants))]
    public void BlockOutputAndHessiansMatchTheHost(TransformerSpec spec, int rows, int tokens)
    {
        var rng = new Random(spec.HiddenSize * 31 + tokens);
        using var reader = WriteLayer(spec, rng);
        var rotary = new RotaryEmbedding(spec.Rope, spec.HeadDim);
        var host = new DecoderBlock(0, spec, rotary);
        var gpu = new DecoderBlock(0, spec, rotary, _algebra, _forward);
        host.Load(reader);
        gpu.Load(reader);
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
        foreach (var group in host.LinearGroups)
        {
            var gpuGroup = gpu.LinearGroups.Single(g => g.Site == group.Site);
            var h = hostCapture.AccumulatorFor(group);
            var g = gpuCapture.AccumulatorFor(gpuGroup);
            Assert.That(g.Count, Is.EqualTo(h.Count), $"{group.Site} rows");
            Assert.That(Deviation.Relative(g.Sum.Span, h.Sum.Span), Is.LessThan(2e-5), $"{group.Site} Hessian");
        }
    }

    [Test]
    public void RowsWithNonFiniteInputsAreDroppedFromTheHessianAsOnTheHost()
    {
        var rng = new Random(7);
        using var reader = WriteLayer(Llama, rng);
        var rotary = new RotaryEmbedding(Llama.Rope, Llama.HeadDim);
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

    /// <summary>One decoder layer's tensors (HF names, float32) in a safetensors file, weights ~ N(0, 1/in).</summary>
    private SafetensorsFile WriteLayer(TransformerSpec spec, Random rng)
    {
        var writer = new SafetensorsWriter();
        var block = new DecoderBlock(0, spec, new RotaryEmbedding(spec.Rope, spec.HeadDim));
        foreach (var linear in block.Linears)
        {
            writer.AddFloat32(linear.WeightTensor, [linear.OutFeatures, linear.InFeatures],
                RandomValues(rng, linear.OutFeatures * linear.InFeatures, 1f / MathF.Sqrt(linear.InFeatures)));
            if (linear.BiasTensor is { } bias)
                writer.AddFloat32(bias, [linear.OutFeatures], RandomValues(rng, linear.OutFeatures, 0.1f));
        }
        foreach (var name in block.TensorNames.Where(n => n.Contains("norm", StringComparison.Ordinal)))
        {
            int width = name.Contains("self_attn", StringComparison.Ordinal) ? spec.HeadDim : spec.HiddenSize;
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
