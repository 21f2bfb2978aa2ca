using Converter.Formats.Safetensors;
using Converter.Models.Modules;

namespace Converter.Models.Tests.Models;

public class WeightLoadingTests
{
    [Test]
    public void ShapeDisagreeingWithConfigNamesTensorAndFile()
    {
        using var h = new ModelHarness();
        var wrong = new TransformerModel(h.Model.Spec with { IntermediateSize = 512 });
        var e = Assert.Throws<SafetensorsFormatException>(() => wrong.Layers[0].Load(h.Checkpoint));
        Assert.That(e!.Message, Does.Contain("model.layers.0.mlp.gate_proj.weight").And.Contain("model.safetensors").And.Contain("(768, 256)"));
        Assert.That(wrong.Layers[0].IsLoaded, Is.False, "a failed load does not leave the module half loaded");
    }

    [Test]
    public void MissingTensorIsNamed()
    {
        using var h = new ModelHarness();
        var wrong = new TransformerModel(h.Model.Spec with { QkNorm = QkNormPlacement.PerHead });
        var e = Assert.Throws<SafetensorsFormatException>(() => wrong.Layers[1].Load(h.Checkpoint));
        Assert.That(e!.Message, Does.Contain("model.layers.1.self_attn.q_norm.weight"));
    }

    [Test]
    public void Bf16WeightsConvertExactly()
    {
        using var h = new ModelHarness();
        h.Model.Layers[0].Load(h.Checkpoint);
        var raw = h.Checkpoint.ReadRaw<ushort>("model.layers.0.self_attn.q_proj.weight");
        var weight = ((SelfAttention)h.Model.Layers[0].Attention).Q.Weight.Data;
        for (int i = 0; i < raw.Length; i++)
            Assert.That(BitConverter.SingleToUInt32Bits(weight[i]), Is.EqualTo((uint)raw[i] << 16), $"at {i}");
    }
}
