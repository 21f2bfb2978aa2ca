using Converter.Compute;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models.Forward;
using Converter.Models.Modules;
using Converter.Models.Rotary;
using Converter.TestSupport;

namespace Converter.Models.Tests.Models;

/// <summary>
/// Latent attention's q LoRA, biases and value heads narrower than the keys (none of which rand-deepseek-v3 has)
/// against a direct double-precision transcription of DeepseekV3Attention.forward: loops over tokens and heads,
/// no shared code with the module.
/// </summary>
public class LatentAttentionTests
{
    private const int Hidden = 32, Heads = 2, QRank = 16, KvRank = 8, Nope = 4, RopeDim = 4, ValueDim = 6, Tokens = 7;
    private const float Eps = 1e-6f, Scale = 0.3f;

    private static readonly TransformerSpec Spec = new()
    {
        ArchitectureName = "DeepseekV3ForCausalLM",
        HiddenSize = Hidden,
        IntermediateSize = 64,
        Layers = 1,
        Heads = Heads,
        KvHeads = Heads,
        HeadDim = Nope + RopeDim,
        VocabSize = 16,
        NormEps = Eps,
        RotaryDims = RopeDim,
        RotaryPairing = RotaryPairing.Interleaved,
        AttentionScale = Scale,
        LatentAttention = new LatentAttentionSpec(QRank, KvRank, Nope, RopeDim, ValueDim, Bias: true),
        LayerAttention = [new LayerAttention(null, new RopeConfig(RopeType.Default, 10000))],
    };

    [Test]
    public void MatchesADirectTranscriptionOfTransformers()
    {
        var rng = new Random(5);
        float[] Random(int n, float scale) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();
        var w = new Dictionary<string, (int Rows, int Cols, float[] Values)>
        {
            ["q_a_proj.weight"] = (QRank, Hidden, Random(QRank * Hidden, 0.3f)),
            ["q_a_proj.bias"] = (QRank, 1, Random(QRank, 0.1f)),
            ["q_a_layernorm.weight"] = (QRank, 1, Random(QRank, 0.2f).Select(v => 1 + v).ToArray()),
            ["q_b_proj.weight"] = (Heads * (Nope + RopeDim), QRank, Random(Heads * (Nope + RopeDim) * QRank, 0.3f)),
            ["kv_a_proj_with_mqa.weight"] = (KvRank + RopeDim, Hidden, Random((KvRank + RopeDim) * Hidden, 0.3f)),
            ["kv_a_proj_with_mqa.bias"] = (KvRank + RopeDim, 1, Random(KvRank + RopeDim, 0.1f)),
            ["kv_a_layernorm.weight"] = (KvRank, 1, Random(KvRank, 0.2f).Select(v => 1 + v).ToArray()),
            ["kv_b_proj.weight"] = (Heads * (Nope + ValueDim), KvRank, Random(Heads * (Nope + ValueDim) * KvRank, 0.4f)),
            ["o_proj.weight"] = (Hidden, Heads * ValueDim, Random(Hidden * Heads * ValueDim, 0.3f)),
            ["o_proj.bias"] = (Hidden, 1, Random(Hidden, 0.1f)),
        };
        using var dir = new TempDirectory();
        var writer = new SafetensorsWriter();
        foreach (var (name, (rows, cols, values)) in w)
            writer.AddFloat32("model.layers.0.self_attn." + name, cols == 1 ? [rows] : [rows, cols], values);
        writer.Write(dir.File("layer.safetensors"));
        using var reader = SafetensorsFile.Open(dir.File("layer.safetensors"));

        var attention = new LatentAttention("model.layers.0", Spec, new RotaryEmbedding(Spec.LayerAttention[0].Rope!, RopeDim));
        Assert.That(attention.LinearGroups.Select(g => (g.Site, string.Join(",", g.Linears.Select(l => l.Name[25..])))), Is.EqualTo(new[]
        {
            (LinearSite.AttentionInput, "q_a_proj,kv_a_proj_with_mqa"),
            (LinearSite.QueryLatent, "q_b_proj"),
            (LinearSite.AttentionOutput, "o_proj"),
        }), "exllamav3's Hessian groups: block input, query latent, attention output");
        attention.Load(new CheckpointWeights(reader));
        var x = new Matrix(Tokens, Hidden, Random(Tokens * Hidden, 1f));
        var actual = HostForwardPass.Instance.Run(x, (pass, input) => attention.Forward(pass, input, Tokens, null));

        var expected = Reference(x, name => w[name].Values);
        double error = Math.Sqrt(actual.Data.Zip(expected).Sum(p => Math.Pow(p.First - p.Second, 2)) / expected.Sum(e => (double)e * e));
        Assert.That(error, Is.LessThan(1e-5), "relative Frobenius error");
    }

    private static float[] Reference(Matrix x, Func<string, float[]> p)
    {
        double[] Linear(double[] input, string name, int outF, string? bias)
        {
            var wt = p(name);
            var y = new double[outF];
            for (int o = 0; o < outF; o++)
            {
                double s = bias is null ? 0 : p(bias)[o];
                for (int i = 0; i < input.Length; i++)
                    s += wt[o * input.Length + i] * input[i];
                y[o] = s;
            }
            return y;
        }
        double[] Rms(double[] v, string name)
        {
            double ms = v.Sum(a => a * a) / v.Length;
            var g = p(name);
            return v.Select((a, i) => (float)(a / Math.Sqrt(ms + Eps)) * (double)g[i]).ToArray();
        }
        void Rotate(Span<double> v, int t)
        {
            for (int i = 0; i < RopeDim / 2; i++)
            {
                double angle = t * Math.Pow(10000, -2.0 * i / RopeDim);
                double a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * Math.Cos(angle) - b * Math.Sin(angle);
                v[2 * i + 1] = b * Math.Cos(angle) + a * Math.Sin(angle);
            }
        }
        int qk = Nope + RopeDim;
        var q = new double[Tokens][];
        var k = new double[Tokens][];
        var v = new double[Tokens][];
        for (int t = 0; t < Tokens; t++)
        {
            var xt = x.Row(t).ToArray().Select(a => (double)a).ToArray();
            q[t] = Linear(Rms(Linear(xt, "q_a_proj.weight", QRank, "q_a_proj.bias"), "q_a_layernorm.weight"), "q_b_proj.weight", Heads * qk, null);
            var kva = Linear(xt, "kv_a_proj_with_mqa.weight", KvRank + RopeDim, "kv_a_proj_with_mqa.bias");
            var kpe = kva[KvRank..];
            Rotate(kpe, t);
            var kv = Linear(Rms(kva[..KvRank], "kv_a_layernorm.weight"), "kv_b_proj.weight", Heads * (Nope + ValueDim), null);
            k[t] = new double[Heads * qk];
            v[t] = new double[Heads * ValueDim];
            for (int h = 0; h < Heads; h++)
            {
                Rotate(q[t].AsSpan(h * qk + Nope, RopeDim), t);
                kv.AsSpan(h * (Nope + ValueDim), Nope).CopyTo(k[t].AsSpan(h * qk));
                kpe.CopyTo(k[t].AsSpan(h * qk + Nope));
                kv.AsSpan(h * (Nope + ValueDim) + Nope, ValueDim).CopyTo(v[t].AsSpan(h * ValueDim));
            }
        }
        var output = new float[Tokens * Hidden];
        for (int t = 0; t < Tokens; t++)
        {
            var attended = new double[Heads * ValueDim];
            for (int h = 0; h < Heads; h++)
            {
                var scores = Enumerable.Range(0, t + 1).Select(s => Enumerable.Range(0, qk).Sum(i => q[t][h * qk + i] * k[s][h * qk + i]) * Scale).ToArray();
                double max = scores.Max(), sum = scores.Sum(s => Math.Exp(s - max));
                for (int s = 0; s <= t; s++)
                    for (int i = 0; i < ValueDim; i++)
                        attended[h * ValueDim + i] += Math.Exp(scores[s] - max) / sum * v[s][h * ValueDim + i];
            }
            var o = Linear(attended, "o_proj.weight", Hidden, "o_proj.bias");
            for (int i = 0; i < Hidden; i++)
                output[t * Hidden + i] = (float)o[i];
        }
        return output;
    }
}
