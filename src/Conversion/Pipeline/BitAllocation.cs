using Converter.Models;

namespace Converter.Conversion.Pipeline;

/// <summary>A linear layer as the allocator sees it: its group and its weight count.</summary>
/// <param name="Name">HF module name, e.g. model.layers.3.self_attn.q_proj.</param>
/// <param name="Layer">Decoder layer index.</param>
/// <param name="Group">Allocation group within the layer: attn.qkv, attn.o, mlp.gu, mlp.d or moe.experts.</param>
/// <param name="Priority">2 for attention, 1 for MLP, 0 for routed experts (exllamav3's ordering).</param>
public sealed record AllocationTarget(string Name, int Layer, string Group, int Priority, long Numel);

/// <summary>
/// Integer K per tensor that hits a fractional bits-per-weight target (docs/exl3-format.md §5.2 step 4): every tensor
/// starts at floor(bpw); round-robin passes over the groups, ordered by priority, then closeness to either end of
/// the network, then layer, bump a whole group by one bit when it still fits the budget int(bpw·Σnumel).
/// </summary>
public static class BitAllocation
{
    public const int MaxBits = 8;

    /// <summary>The group of a layer's routed experts, which always share one K.</summary>
    public const string RoutedExperts = "moe.experts";

    /// <summary>
    /// The budgeted linears of <paramref name="model"/>'s decoder layers, grouped per layer by where they read their
    /// input: attention q/k/v and o (priority 2), MLP gate/up and down, shared experts included (1), and all routed
    /// experts of the layer as one group (0), as exllamav3 ranks them (§5.2 step 4). The head is outside the budget.
    /// </summary>
    public static List<AllocationTarget> Targets(TransformerModel model)
    {
        var targets = new List<AllocationTarget>();
        foreach (var block in model.Layers)
        {
            foreach (var group in block.LinearGroups)
            {
                var (name, priority) = group.Site switch
                {
                    // Latent attention's q_b_proj rises with q_a_proj and kv_a_proj_with_mqa (exllamav3 ranks all of
                    // MLAttention's linears at the attention's priority).
                    LinearSite.AttentionInput or LinearSite.QueryLatent => ("attn.qkv", 2),
                    LinearSite.AttentionOutput => ("attn.o", 2),
                    LinearSite.MlpInput => ("mlp.gu", 1),
                    LinearSite.MlpOutput => ("mlp.d", 1),
                    // All routed experts of a layer rise together, after attention and MLPs (exllamav3's block_gud
                    // group, priority 0: docs/exl3-format.md §5.2 step 4); shared experts rank as MLPs above.
                    LinearSite.ExpertInput or LinearSite.ExpertOutput => (RoutedExperts, 0),
                    _ => throw new InvalidOperationException($"unexpected linear site {group.Site} in {block.Name}"),
                };
                foreach (var linear in group.Linears)
                    targets.Add(new AllocationTarget(linear.Name, block.Index, name, priority, (long)linear.InFeatures * linear.OutFeatures));
            }
        }
        return targets;
    }

    public static Dictionary<string, int> Allocate(IReadOnlyList<AllocationTarget> targets, double bitsPerWeight)
    {
        if (bitsPerWeight < 1 || bitsPerWeight > MaxBits)
            throw new ArgumentOutOfRangeException(nameof(bitsPerWeight), bitsPerWeight, "target bits per weight must be in 1..8");
        int baseBits = (int)Math.Floor(bitsPerWeight);
        long total = targets.Sum(t => t.Numel);
        long budget = (long)(bitsPerWeight * total);
        long used = baseBits * total;
        var bits = targets.ToDictionary(t => t.Name, _ => baseBits);
        int lastLayer = targets.Count == 0 ? 0 : targets.Max(t => t.Layer);

        var groups = targets
            .Select((t, index) => (t, index))
            .GroupBy(x => (x.t.Layer, x.t.Group))
            .Select(g => (Members: g.Select(x => x.t).ToList(), First: g.Min(x => x.index)))
            .OrderByDescending(g => g.Members[0].Priority)
            .ThenBy(g => Math.Min(g.Members[0].Layer, lastLayer - g.Members[0].Layer))
            .ThenBy(g => g.Members[0].Layer)
            .ThenBy(g => g.First)
            .Select(g => g.Members)
            .ToList();

        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (var group in groups)
            {
                long cost = group.Sum(t => t.Numel);
                if (group.Any(t => bits[t.Name] >= MaxBits) || used + cost > budget)
                    continue;
                foreach (var t in group)
                    bits[t.Name]++;
                used += cost;
                changed = true;
            }
        }
        return bits;
    }

    /// <summary>Σ K·numel / Σ numel over the budgeted tensors: the "bits" of quantization_config (§4.5).</summary>
    public static double AverageBits(IReadOnlyList<AllocationTarget> targets, IReadOnlyDictionary<string, int> bits)
    {
        long total = targets.Sum(t => t.Numel);
        return total == 0 ? 0 : targets.Sum(t => (double)bits[t.Name] * t.Numel) / total;
    }
}
