using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Models.Tests.Models;

/// <summary>Written names (prefix renames on whole components) and which checkpoint tensors no module reads.</summary>
public class TensorNamesTests
{
    [TestCase("lm_head", "language_model.lm_head")]
    [TestCase("lm_head.weight", "language_model.lm_head.weight")]
    [TestCase("lm_headx.weight", null)]
    [TestCase("model.lm_head.weight", null)]
    [TestCase("lm_hea", null)]
    public void RenamesMatchWholeLeadingComponents(string name, string? expected) =>
        Assert.That(new PrefixRename("lm_head", "language_model.lm_head").Apply(name), Is.EqualTo(expected));

    [Test]
    public void FirstMatchingRenameApplies()
    {
        var names = new TensorNames("a.b", "head") { WrittenRenames = [new("a.b", "x"), new("a", "y")] };
        Assert.That((names.Written("a.b.c"), names.Written("a.c"), names.Written("c.a")), Is.EqualTo(("x.c", "y.c", "c.a")));
        Assert.That(TensorNames.Standard.Written("model.layers.0.mlp.up_proj"), Is.EqualTo("model.layers.0.mlp.up_proj"));
    }

    /// <summary>Fused sources are read by the linears they hold; a tied head's lm_head.weight duplicates the embedding; an untied one is read.</summary>
    [TestCase("rand-phi3")]
    [TestCase("rand-gemma3")]
    [TestCase("rand-glm4")]
    public void TextCheckpointsHaveNoUnreadTensors(string fixture)
    {
        var dir = RepoPaths.RequireSharedModel(fixture);
        using var reader = CheckpointReader.Open(dir);
        Assert.That(TransformerModel.FromConfig(ModelConfig.Load(dir)).UnreadTensors(reader.TensorNames), Is.Empty);
    }

    [Test]
    public void TensorsOutsideTheModelAreUnread()
    {
        var model = TransformerModel.FromConfig(ModelConfig.Load(RepoPaths.TestModel("rand-llama31")));
        using var reader = CheckpointReader.Open(RepoPaths.TestModel("rand-llama31"));
        Assert.That(model.UnreadTensors(reader.TensorNames.Append("model.rotary_emb.inv_freq").Prepend("extra.weight")),
            Is.EqualTo(new[] { "extra.weight", "model.rotary_emb.inv_freq" }));
    }
}
