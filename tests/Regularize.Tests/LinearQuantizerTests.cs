using Converter.Regularize.Hessian;
using Converter.Regularize.Ldl;
using Converter.Regularize.Quantization;
using Converter.Regularize.Reconstruction;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

public class LinearQuantizerTests
{
    private static readonly CodebookTableCache Tables = new();

    /// <summary>Inputs with strongly correlated channels and a few loud ones, like real activations.</summary>
    private static float[] CorrelatedInputs(int tokens, int k, int seed)
    {
        var rng = new Random(seed);
        var mix = new float[k * k];
        for (int i = 0; i < k; i++)
        {
            mix[i * k + i] = 1;
            for (int j = Math.Max(0, i - 4); j < i; j++)
                mix[i * k + j] = (float)(rng.NextDouble() - 0.5);
        }
        var x = new float[tokens * k];
        var z = new float[k];
        for (int t = 0; t < tokens; t++)
        {
            for (int i = 0; i < k; i++)
                z[i] = (float)Normal(rng) * (i % 37 == 0 ? 8 : 1);
            for (int i = 0; i < k; i++)
            {
                double s = 0;
                for (int j = 0; j <= i; j++)
                    s += mix[i * k + j] * z[j];
                x[t * k + i] = (float)s;
            }
        }
        return x;
    }

    private static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static float[] RandomWeight(int outFeatures, int inFeatures, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, outFeatures * inFeatures).Select(i => (float)(Normal(rng) * 0.02 * (1 + (i % inFeatures % 11 == 0 ? 3 : 0)))).ToArray();
    }

    private static GroupHessian Hessian(float[] x, int tokens, int k, int seed)
    {
        var acc = new HessianAccumulator(k);
        acc.Add(x, tokens);
        return GroupHessian.Finalize(acc, LinearQuantizer.Pad(k), GroupHessian.DefaultSigma, new Random(seed));
    }

    private static QuantizedLinear Quantize(float[] weight, int outF, int inF, GroupHessian h, int bits, LinearQuantizerSettings? settings = null, string codebook = "mul1")
    {
        var table = Tables.Get(CodebookSpec.Parse(codebook));
        return LinearQuantizer.Quantize("test", weight, outF, inF, null, h, table, new TrellisEncoder(table.Memory, bits), settings ?? new(), new Random(5));
    }

    private static float[] ReconstructHf(QuantizedLinear q)
    {
        var table = Tables.Get(q.Codebook);
        var w = LinearReconstruction.Reconstruct(q.Trellis, q.PaddedIn, q.PaddedOut, q.Bits, table.Values, q.Suh, q.Svh);
        var hf = new float[q.OutFeatures * q.InFeatures];
        for (int o = 0; o < q.OutFeatures; o++)
        {
            for (int i = 0; i < q.InFeatures; i++)
                hf[o * q.InFeatures + i] = w[i * q.PaddedOut + o];
        }
        return hf;
    }

    private static double RelativeError(float[] a, float[] b)
    {
        double e = 0, s = 0;
        for (int i = 0; i < a.Length; i++)
        {
            e += (double)(a[i] - b[i]) * (a[i] - b[i]);
            s += (double)b[i] * b[i];
        }
        return Math.Sqrt(e / s);
    }

    /// <summary>Mean over tokens of ‖x·(W−Ŵ)ᵀ‖² / ‖x·Wᵀ‖²: the output error the proxy estimates.</summary>
    private static double OutputError(float[] x, int tokens, float[] w, float[] wq, int outF, int inF)
    {
        double e = 0, s = 0;
        for (int t = 0; t < tokens; t++)
        {
            for (int o = 0; o < outF; o++)
            {
                double y = 0, yq = 0;
                for (int i = 0; i < inF; i++)
                {
                    y += x[t * inF + i] * w[o * inF + i];
                    yq += x[t * inF + i] * wq[o * inF + i];
                }
                e += (y - yq) * (y - yq);
                s += y * y;
            }
        }
        return e / s;
    }

    [Test]
    public void HessianAccumulatorIsXTransposeXAndDropsNonFiniteRows()
    {
        const int k = 24, tokens = 10;
        var x = CorrelatedInputs(tokens, k, 1);
        x[3 * k + 5] = float.NaN;
        var acc = new HessianAccumulator(k);
        acc.Add(x, tokens);
        Assert.That(acc.Count, Is.EqualTo(9));
        Assert.That(acc.DroppedRows, Is.EqualTo(1));
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int t = 0; t < tokens; t++)
                {
                    if (t != 3)
                        s += (double)x[t * k + i] * x[t * k + j];
                }
                Assert.That(acc.Sum.Span[i * k + j], Is.EqualTo(s).Within(1e-4 * (1 + Math.Abs(s))));
            }
        }
    }

    [Test]
    public void BlockLdlReconstructsTheHessian()
    {
        const int k = 64;
        var h = Hessian(CorrelatedInputs(200, k, 2), 200, k, 3);
        var basis = h.InQuantizedBasis(h.InputSigns);
        var hd = Array.ConvertAll(basis, v => (double)v);
        var ldl = BlockLdl.Decompose(hd, LinearQuantizer.Pad(k), GroupHessian.DefaultSigma);
        Assert.That(ldl.Factor, Is.Not.Null);
        int n = LinearQuantizer.Pad(k);
        var lu = ldl.Factor!;
        // Strictly block-lower: zero on and above the 16×16 diagonal blocks.
        for (int i = 0; i < n; i++)
        {
            for (int j = i / 16 * 16; j < n; j++)
                Assert.That(lu[i * n + j], Is.Zero, $"({i}, {j})");
        }
        // (I + L_u)⁻¹ H (I + L_u)⁻ᵀ must be block diagonal.
        var l = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.Dense(n, n, (i, j) => (i == j ? 1 : 0) + lu[i * n + j]);
        var hm = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.DenseOfRowMajor(n, n, hd);
        var d = l.Inverse() * hm * l.Inverse().Transpose();
        double offBlock = 0, scale = hm.Diagonal().Average();
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                if (i / 16 != j / 16)
                    offBlock = Math.Max(offBlock, Math.Abs(d[i, j]));
            }
        }
        Assert.That(offBlock / scale, Is.LessThan(1e-4));
    }

    [Test]
    public void StoredTensorsReconstructTheWeightAndFollowTheFormatShapes()
    {
        const int outF = 200, inF = 120, tokens = 300;
        var x = CorrelatedInputs(tokens, inF, 4);
        var w = RandomWeight(outF, inF, 5);
        var q = Quantize(w, outF, inF, Hessian(x, tokens, inF, 6), bits: 4);
        Assert.That((q.PaddedIn, q.PaddedOut), Is.EqualTo((128, 256)));
        Assert.That(q.Trellis, Has.Length.EqualTo(128 / 16 * (256 / 16) * 16 * 4));
        Assert.That(q.Suh, Has.Length.EqualTo(128));
        Assert.That(q.Svh, Has.Length.EqualTo(256));
        Assert.That(q.Suh.All(v => (float)(Half)v == v) && q.Svh.All(v => (float)(Half)v == v), Is.True, "scales are fp16-exact");
        Assert.That(q.Svh.Skip(outF).All(v => v == 0), Is.True, "padded output channels reconstruct to zero");
        Assert.That(q.Fallback, Is.Null);

        var wq = ReconstructHf(q);
        double rel = RelativeError(wq, w);
        TestContext.Out.WriteLine($"K=4: weight error {rel:F4}, proxy {q.ProxyError:E3}, g {q.GlobalScale:F3}");
        // LDLQ trades weight error for output error; still near the codebook's distortion at K=4 (√0.0047 ≈ 0.069).
        Assert.That(rel, Is.InRange(0.04, 0.15));
        double outErr = OutputError(x, tokens, w, wq, outF, inF);
        Assert.That(outErr, Is.EqualTo(q.ProxyError).Within(q.ProxyError * 0.35), "proxy error estimates the output error");
    }

    [Test]
    public void ErrorFeedbackLowersOutputErrorAndBitsLowerItFurther()
    {
        const int outF = 128, inF = 128, tokens = 400;
        var x = CorrelatedInputs(tokens, inF, 7);
        var w = RandomWeight(outF, inF, 8);
        var h = Hessian(x, tokens, inF, 9);
        var withFeedback = ReconstructHf(Quantize(w, outF, inF, h, bits: 3));
        var noHessian = ReconstructHf(Quantize(w, outF, inF, GroupHessian.Finalize(new HessianAccumulator(inF), 128, 0.025, new Random(9)), bits: 3));
        double feedbackErr = OutputError(x, tokens, w, withFeedback, outF, inF);
        double plainErr = OutputError(x, tokens, w, noHessian, outF, inF);
        TestContext.Out.WriteLine($"output error K=3: LDLQ {feedbackErr:E3}, no feedback {plainErr:E3}");
        Assert.That(feedbackErr, Is.LessThan(plainErr * 0.9));

        double previous = double.MaxValue;
        foreach (var bits in new[] { 2, 3, 5 })
        {
            var q = Quantize(w, outF, inF, h, bits);
            Assert.That(q.ProxyError, Is.LessThan(previous / 2.5), $"K={bits}");
            previous = q.ProxyError;
        }
    }

    [Test]
    public void ExactHessianBasisIsNoWorseThanSignOnly()
    {
        const int outF = 128, inF = 128, tokens = 400;
        var x = CorrelatedInputs(tokens, inF, 10);
        var w = RandomWeight(outF, inF, 11);
        var h = Hessian(x, tokens, inF, 12);
        var exact = ReconstructHf(Quantize(w, outF, inF, h, 2, new LinearQuantizerSettings(Basis: HessianBasis.Exact)));
        var signOnly = ReconstructHf(Quantize(w, outF, inF, h, 2, new LinearQuantizerSettings(Basis: HessianBasis.SignOnly)));
        double e = OutputError(x, tokens, w, exact, outF, inF), s = OutputError(x, tokens, w, signOnly, outF, inF);
        TestContext.Out.WriteLine($"output error K=2: exact basis {e:E3}, sign-only {s:E3}");
        Assert.That(e, Is.LessThan(s * 1.05));
    }

    [Test]
    public void LdlqRunsThroughTheSettingsSolver()
    {
        const int outF = 128, inF = 128, tokens = 200;
        var x = CorrelatedInputs(tokens, inF, 13);
        var w = RandomWeight(outF, inF, 14);
        var h = Hessian(x, tokens, inF, 15);
        var solver = new CountingLdlqSolver();
        var counted = Quantize(w, outF, inF, h, 2, new LinearQuantizerSettings { Ldlq = solver });
        var plain = Quantize(w, outF, inF, h, 2);
        Assert.That(solver.Calls, Is.EqualTo(1));
        Assert.That(solver.Factors, Is.EqualTo(1), "the factor comes from the solver too");
        Assert.That(solver.HadFactor, Is.True, "a positive definite Hessian gives LDLQ its factor");
        Assert.That(counted.Trellis, Is.EqualTo(plain.Trellis));
        Assert.That(counted.ProxyError, Is.EqualTo(plain.ProxyError));
    }

    /// <summary>
    /// A weight handed over transposed and padded (the drift target's way, so its HF copy can die first) quantizes as
    /// the weight itself does, also when the scale refit starts again from it; the array becomes Q.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void ATransposedWeightQuantizesAsTheWeightDoes(bool refit)
    {
        const int outF = 200, inF = 120, tokens = 300;
        var x = CorrelatedInputs(tokens, inF, 16);
        var weight = RandomWeight(outF, inF, 17);
        var h = Hessian(x, tokens, inF, 18);
        var settings = new LinearQuantizerSettings { Tuning = new QuantizerTuning { RefitScales = refit } };
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var w = LinearQuantizer.TransposePadded(weight, outF, inF, LinearQuantizer.Pad(inF), LinearQuantizer.Pad(outF));
        var given = LinearQuantizer.QuantizeTransposed("test", w, outF, inF, null, h, table, new TrellisEncoder(table.Memory, 3), settings, new Random(5));
        var plain = Quantize(weight, outF, inF, h, 3, settings);
        Assert.That(given.Trellis, Is.EqualTo(plain.Trellis));
        Assert.That((given.Suh, given.Svh), Is.EqualTo((plain.Suh, plain.Svh)));
        Assert.That((given.ProxyError, given.ProxyBeforeRefit), Is.EqualTo((plain.ProxyError, plain.ProxyBeforeRefit)));
        Assert.That(plain.ProxyBeforeRefit.HasValue, Is.EqualTo(refit), "the refit ran when asked");
        Assert.That(w, Is.Not.EqualTo(LinearQuantizer.TransposePadded(weight, outF, inF, LinearQuantizer.Pad(inF), LinearQuantizer.Pad(outF))), "taken over: it holds Q now");
    }

    /// <summary>The host solver, counting its calls.</summary>
    private sealed class CountingLdlqSolver : ILdlqSolver
    {
        public int Calls { get; private set; }
        public int Factors { get; private set; }
        public bool HadFactor { get; private set; }

        public string Device => HostLdlqSolver.Instance.Device;

        public BlockLdlResult Factor(float[] hessian, int k, double sigma, Converter.Compute.IDenseAlgebra algebra)
        {
            Factors++;
            return HostLdlqSolver.Instance.Factor(hessian, k, sigma, algebra);
        }

        public LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, float[]? factor, ITileEncoder encoder, float[]? quantizedInto = null)
        {
            Calls++;
            HadFactor = factor is not null;
            return HostLdlqSolver.Instance.Quantize(wr, k, n, factor, encoder, quantizedInto);
        }
    }

    /// <summary>
    /// LDLQ's Q, kept as <see cref="QuantizedLinear.Decoded"/>, is the stored trellis decoded, so the reconstruction
    /// the converter makes from it (rotated in place) is, to the bit, the one decoding gives: with feedback at K = 2, 3
    /// and 6, with the refinement passes (which change states and Q together), and without a Hessian.
    /// </summary>
    [TestCase(2, 0, false)]
    [TestCase(3, 0, false)]
    [TestCase(6, 0, false)]
    [TestCase(3, 2, false)]
    [TestCase(2, 0, true)]
    public void TheReconstructionFromQIsTheDecodedTrellisOne(int bits, int refinePasses, bool noHessian)
    {
        const int outF = 200, inF = 120, tokens = 300;
        var x = CorrelatedInputs(tokens, inF, 8);
        var h = noHessian ? GroupHessian.Finalize(new HessianAccumulator(inF), 128, 0.025, new Random(1)) : Hessian(x, tokens, inF, 9);
        var settings = new LinearQuantizerSettings { Tuning = QuantizerTuning.Default with { RefinePasses = refinePasses } };
        var q = Quantize(RandomWeight(outF, inF, 10), outF, inF, h, bits, settings);
        Assert.That(q.Decoded, Is.Not.Null.And.Length.EqualTo(q.PaddedIn * q.PaddedOut));
        var table = Tables.Get(q.Codebook);
        var decoded = new float[q.Decoded!.Length];
        TrellisDecoderDecode(q, table.Values, decoded);
        Assert.That(q.Decoded, Is.EqualTo(decoded), "Q is the trellis decoded");
        var fromTrellis = LinearReconstruction.Reconstruct(q.Trellis, q.PaddedIn, q.PaddedOut, q.Bits, table.Values, q.Suh, q.Svh);
        var fromQ = LinearReconstruction.FromDecoded((float[])q.Decoded.Clone(), q.PaddedIn, q.PaddedOut, q.Suh, q.Svh);
        Assert.That(fromQ, Is.EqualTo(fromTrellis));
    }

    private static void TrellisDecoderDecode(QuantizedLinear q, ReadOnlySpan<float> table, float[] into) =>
        Converter.Trellis.Tiles.TrellisDecoder.Decode(q.Trellis, q.PaddedIn / 16, q.PaddedOut / 16, q.Bits, table, into);

    [Test]
    public void FallbackWithoutHessianIsRecorded()
    {
        var h = GroupHessian.Finalize(new HessianAccumulator(128), 128, 0.025, new Random(1));
        Assert.That(h.FallbackReason, Does.Contain("no calibration rows"));
        var q = Quantize(RandomWeight(128, 128, 1), 128, 128, h, 2);
        Assert.That(q.Fallback, Is.Not.Null);
        Assert.That(q.ProxyIsRmse, Is.True);
    }

    /// <summary>
    /// The quantizer disposes the target it was given, which then lets go of its arrays: a caller's reference to it
    /// kept a head's 2.1 GB target reachable through the reconstruction (session 26's host peak).
    /// </summary>
    [Test]
    public void TheHeldTargetLetsGoOfItsArraysOnceQuantized()
    {
        const int outF = 128, inF = 256;
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var h = Hessian(CorrelatedInputs(300, inF, 4), 300, inF, 4);
        var held = new HostLinearTarget(LinearQuantizer.TransposePadded(RandomWeight(outF, inF, 3), outF, inF, inF, outF), inF, outF);
        var q = LinearQuantizer.QuantizeHeld("test", held, outF, inF, null, h, table, new TrellisEncoder(table.Memory, 3), new LinearQuantizerSettings(), new Random(5));
        Assert.That(q.Decoded, Has.Length.EqualTo(inF * outF), "Q keeps its array");
        Assert.That(held.Loaded, Is.False);
        Assert.Throws<InvalidOperationException>(() => held.HostTarget());
        Assert.Throws<InvalidOperationException>(() => held.HostWeight());
    }
}
