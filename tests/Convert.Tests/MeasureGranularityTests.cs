using Converter.Conversion.Pipeline;
using Converter.Conversion.Pipeline.Allocation;
using Converter.Formats.HuggingFace;
using Converter.Models;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>The measured units of real model layouts (configs only; nothing is loaded or run).</summary>
public class MeasureGranularityTests
{
    /// <summary>The budgeted linears of the model in <paramref name="model"/>, from its config.json alone.</summary>
    internal static List<AllocationTarget> TargetsOf(string model) => BitAllocation.Targets(TransformerModel.FromConfig(ModelConfig.Load(model)));

    [Test]
    public void TensorUnitsAreOneLinearEachAndGroupUnitsTheAllocationGroups()
    {
        var targets = TargetsOf(RepoPaths.TestModel("rand-llama31"));
        var tensor = MeasureGranularity.Tensor.Units(targets);
        Assert.That(tensor.Select(u => u.Single().Name), Is.EqualTo(targets.Select(t => t.Name)), "one unit per linear, in the targets' order");
        Assert.That(tensor, Has.Count.EqualTo(2 * 7));

        var group = MeasureGranularity.Group.Units(targets);
        Assert.That(group.Select(u => (u[0].Layer, u[0].Group, u.Count)), Is.EqualTo(new[]
        {
            (0, "attn.qkv", 3), (0, "attn.o", 1), (0, "mlp.gu", 2), (0, "mlp.d", 1),
            (1, "attn.qkv", 3), (1, "attn.o", 1), (1, "mlp.gu", 2), (1, "mlp.d", 1),
        }));
        Assert.That(group.SelectMany(u => u), Is.EqualTo(targets), "every linear in exactly one unit");
    }

    [Test]
    public void RoutedExpertsStayOneUnitPerLayerWhileLatentAttentionAndSharedExpertsSplit()
    {
        // DeepSeek-V3: latent attention, a dense first layer, then 4 routed experts and a shared expert per layer.
        var targets = TargetsOf(RepoPaths.RequireSharedModel("rand-deepseek-v3"));
        var units = MeasureGranularity.Tensor.Units(targets);
        Assert.That(units.SelectMany(u => u), Is.EquivalentTo(targets), "every linear in exactly one unit");
        var experts = units.Where(u => u[0].Group == BitAllocation.RoutedExperts).ToList();
        Assert.That(experts.Select(u => u[0].Layer), Is.EqualTo(new[] { 1, 2 }), "one unit per sparse layer");
        Assert.That(experts.Select(u => u.Count), Is.All.EqualTo(4 * 3), "gate, up and down of all 4 experts");
        Assert.That(experts.SelectMany(u => u).Select(t => t.Layer).Distinct().Count(), Is.EqualTo(2));
        var dense = units.Where(u => u[0].Group != BitAllocation.RoutedExperts).ToList();
        Assert.That(dense.Select(u => u.Count), Is.All.EqualTo(1));
        Assert.That(dense.Select(u => u[0].Name), Has.Some.Contains("kv_a_proj_with_mqa").And.Some.Contains("shared_experts.down_proj"));
    }
}
