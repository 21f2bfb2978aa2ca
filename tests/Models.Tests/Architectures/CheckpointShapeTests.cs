using Converter.Formats.HuggingFace;
using Converter.Formats.Numerics;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Models.Tests.Architectures;

/// <summary>
/// Every tensor of every test model is read, finite, and has exactly the name and shape its config implies,
/// checking the reader and the architecture declarations against each other on real checkpoints.
/// </summary>
public class CheckpointShapeTests
{
    private static IEnumerable<TestCaseData> Models()
    {
        yield return new TestCaseData("tiny-llama").SetName("Checkpoint_tiny-llama");
        yield return new TestCaseData("rand-llama31").SetName("Checkpoint_rand-llama31");
        yield return new TestCaseData("rand-mistral").SetName("Checkpoint_rand-mistral");
        yield return new TestCaseData("rand-qwen3").SetName("Checkpoint_rand-qwen3");
        yield return new TestCaseData("small-qwen2").SetName("Checkpoint_small-qwen2");
    }

    private static string ModelDir(string model) => model switch
    {
        "tiny-llama" => RepoPaths.SampleModel,
        "small-qwen2" => RepoPaths.RequireSharedModel(model),
        _ => RepoPaths.TestModel(model),
    };

    [TestCaseSource(nameof(Models))]
    public void TensorsMatchTheConfig(string model)
    {
        var dir = ModelDir(model);
        var config = ModelConfig.Load(dir);
        using var reader = CheckpointReader.Open(dir);

        var expected = ExpectedShapes(config, TransformerSpec.From(config));
        Assert.That(reader.TensorNames, Is.EquivalentTo(expected.Keys));
        foreach (var name in reader.TensorNames)
        {
            var info = reader.Info(name);
            Assert.That(info.Shape, Is.EqualTo(expected[name]), name);
            Assert.That(info.DType, Is.EqualTo(DType.BF16), name);

            var values = reader.ReadFloat32(name);
            Assert.That(FiniteCheck.IndexOfNonFinite(values), Is.EqualTo(-1), name);
            var bits = reader.ReadRaw<ushort>(name);
            for (var i = 0; i < values.Length; i += 251)
                Assert.That(BitConverter.SingleToUInt32Bits(values[i]), Is.EqualTo((uint)bits[i] << 16), $"{name}[{i}]");
        }
    }

    /// <summary>The transformers state-dict layout of the four architectures, (out, in) for linear weights.</summary>
    private static Dictionary<string, long[]> ExpectedShapes(ModelConfig c, TransformerSpec spec)
    {
        long hidden = c.HiddenSize, q = c.NumAttentionHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim, inter = c.IntermediateSize;
        var shapes = new Dictionary<string, long[]>
        {
            ["model.embed_tokens.weight"] = [c.VocabSize, hidden],
            ["model.norm.weight"] = [hidden],
        };
        if (!c.TieWordEmbeddings)
            shapes["lm_head.weight"] = [c.VocabSize, hidden];
        for (var l = 0; l < c.NumHiddenLayers; l++)
        {
            var p = $"model.layers.{l}.";
            shapes[p + "input_layernorm.weight"] = [hidden];
            shapes[p + "post_attention_layernorm.weight"] = [hidden];
            shapes[p + "self_attn.q_proj.weight"] = [q, hidden];
            shapes[p + "self_attn.k_proj.weight"] = [kv, hidden];
            shapes[p + "self_attn.v_proj.weight"] = [kv, hidden];
            shapes[p + "self_attn.o_proj.weight"] = [hidden, q];
            shapes[p + "mlp.gate_proj.weight"] = [inter, hidden];
            shapes[p + "mlp.up_proj.weight"] = [inter, hidden];
            shapes[p + "mlp.down_proj.weight"] = [hidden, inter];
            if (spec.QkvBias)
            {
                shapes[p + "self_attn.q_proj.bias"] = [q];
                shapes[p + "self_attn.k_proj.bias"] = [kv];
                shapes[p + "self_attn.v_proj.bias"] = [kv];
            }
            if (spec.OutputBias)
                shapes[p + "self_attn.o_proj.bias"] = [hidden];
            if (spec.QkNorm == QkNormPlacement.PerHead)
            {
                shapes[p + "self_attn.q_norm.weight"] = [c.HeadDim];
                shapes[p + "self_attn.k_norm.weight"] = [c.HeadDim];
            }
        }
        return shapes;
    }
}
