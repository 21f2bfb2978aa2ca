using Converter.Conversion.Pipeline;
using Converter.Formats.HuggingFace;
using Converter.Models;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

public class BitAllocationTests
{
    private static List<AllocationTarget> TwoLayers() =>
    [
        new("l0.q", 0, "attn.qkv", 2, 100), new("l0.k", 0, "attn.qkv", 2, 50), new("l0.o", 0, "attn.o", 2, 100),
        new("l0.up", 0, "mlp.gu", 1, 300), new("l0.down", 0, "mlp.d", 1, 300),
        new("l1.q", 1, "attn.qkv", 2, 100), new("l1.k", 1, "attn.qkv", 2, 50), new("l1.o", 1, "attn.o", 2, 100),
        new("l1.up", 1, "mlp.gu", 1, 300), new("l1.down", 1, "mlp.d", 1, 300),
    ];

    [TestCase(2.0)]
    [TestCase(4.0)]
    [TestCase(8.0)]
    public void IntegerTargetGivesThatWidthEverywhere(double bits)
    {
        var result = BitAllocation.Allocate(TwoLayers(), bits);
        Assert.That(result.Values, Is.All.EqualTo((int)bits));
    }

    [Test]
    public void FractionalTargetStaysWithinBudgetAndBumpsAttentionFirst()
    {
        var targets = TwoLayers();
        var result = BitAllocation.Allocate(targets, 3.2);
        double average = BitAllocation.AverageBits(targets, result);
        Assert.That(average, Is.InRange(3.0, 3.2));
        // Budget 0.2·1700 = 340 extra bits: both layers' attention groups (150 + 100 each = 500) cannot all fit;
        // the order is priority then layer, so layer 0's qkv (150) and o (100) go first, then layer 1's qkv does not fit (250+150 > 340)…
        Assert.That(result["l0.q"], Is.EqualTo(4));
        Assert.That(result["l0.o"], Is.EqualTo(4));
        Assert.That(result["l0.up"], Is.EqualTo(3), "MLP groups come after attention");
        // …but layer 1's o (100 more would be 350) does not fit either, so everything else stays at 3.
        Assert.That(result.Where(kv => kv.Key.StartsWith("l1.", StringComparison.Ordinal)).Select(kv => kv.Value), Is.All.EqualTo(3));
    }

    [Test]
    public void NeverExceedsEightBits()
    {
        var result = BitAllocation.Allocate(TwoLayers(), 7.9);
        Assert.That(result.Values, Is.All.InRange(7, 8));
    }

    [Test]
    public void RoutedExpertsOfALayerAreOneGroupBelowAttentionAndMlp()
    {
        using var dir = new TempDirectory();
        // Qwen3-MoE with a dense first layer: 4 experts of 128 in layer 1, a dense MLP of 384 in layer 0.
        File.WriteAllText(dir.File("config.json"), """
            {"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 256, "intermediate_size": 384, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 1000, "max_position_embeddings": 2048,
             "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 128, "mlp_only_layers": [0]}
            """);
        var model = TransformerModel.FromConfig(ModelConfig.Load(dir.Path));
        var targets = BitAllocation.Targets(model);

        var experts = targets.Where(t => t.Name.Contains(".experts.", StringComparison.Ordinal)).ToList();
        Assert.That(experts.Select(t => (t.Layer, t.Group, t.Priority, t.Numel)), Is.All.EqualTo((1, "moe.experts", 0, 128L * 256)));
        Assert.That(experts, Has.Count.EqualTo(12));
        Assert.That(targets.Where(t => t.Layer == 0 && t.Group.StartsWith("mlp.", StringComparison.Ordinal)).Select(t => t.Priority).ToList(), Has.Count.EqualTo(3).And.All.EqualTo(1));
        Assert.That(targets.Select(t => t.Name), Has.None.EqualTo("model.layers.1.mlp.gate").And.None.EqualTo("lm_head"), "the router and the head are not budgeted");

        // 4.5 bpw: the extra 0.5·1081344 bits raise every attention group and layer 0's down_proj; the 393216-weight
        // expert group comes last and no longer fits, so every expert keeps one width.
        var bits = BitAllocation.Allocate(targets, 4.5);
        Assert.That(experts.Select(t => bits[t.Name]), Is.All.EqualTo(4));
        Assert.That(bits["model.layers.0.mlp.down_proj"], Is.EqualTo(5));
        Assert.That(bits["model.layers.1.self_attn.o_proj"], Is.EqualTo(5));
    }
}

