using Converter.Compute;

namespace Converter.Models;

/// <summary>
/// A sparse mixture-of-experts MLP as data: a router (a bias-free linear, hidden → experts, kept unquantized) scores
/// the experts per token, the chosen experts' gated MLPs run on their tokens and are summed with the routing weights,
/// and shared experts, if any, run on every token and are added. <see cref="SparseLayers"/> says which decoder layers
/// have it; the others keep the dense MLP of <see cref="TransformerSpec.IntermediateSize"/>.
/// </summary>
public sealed record MixtureOfExperts
{
    public required RouterSpec Router { get; init; }

    /// <summary>Width of each routed expert's gate and up projections (moe_intermediate_size).</summary>
    public required int ExpertIntermediateSize { get; init; }

    /// <summary>Per layer: whether its MLP is this mixture of experts.</summary>
    public required IReadOnlyList<bool> SparseLayers { get; init; }

    /// <summary>The MoE block's module under the layer: <c>block_sparse_moe</c> (Mixtral) or <c>mlp</c>.</summary>
    public required string Module { get; init; }

    /// <summary>The router's module under the MoE block (<c>gate</c>; gpt-oss: <c>router</c>).</summary>
    public string RouterModule { get; init; } = "gate";

    /// <summary>The router has a bias added to its logits before the choice (gpt-oss's <c>mlp.router.bias</c>).</summary>
    public bool RouterBias { get; init; }

    /// <summary>
    /// The experts are stored fused as 3-D tensors with biases (gpt-oss): <c>experts.gate_up_proj</c> [experts, hidden,
    /// 2·intermediate] with gate and up interleaved along the last axis, <c>experts.down_proj</c> [experts,
    /// intermediate, hidden], and <c>experts.gate_up_proj_bias</c>, <c>experts.down_proj_bias</c>; each expert is still
    /// three linears (<see cref="ExpertSlice"/>), named <c>experts.E.gate_proj</c>/<c>up_proj</c>/<c>down_proj</c> as
    /// exllamav3 reads and writes them.
    /// </summary>
    public bool FusedExperts { get; init; }

    /// <summary>The projections of expert E, under <c>experts.E</c> of the MoE block.</summary>
    public MlpNames ExpertNames { get; init; } = MlpNames.Standard;

    /// <summary>Width of the shared experts' MLP (n_shared_experts · moe_intermediate_size), 0 when there are none.</summary>
    public int SharedIntermediateSize { get; init; }

    /// <summary>The shared experts' module under the MoE block (<c>shared_experts</c>).</summary>
    public string SharedModule { get; init; } = "shared_experts";

    /// <summary>
    /// The router module's correction bias added to the scores for the choice (sigmoid routing's
    /// <c>e_score_correction_bias</c>), or null when the router has none.
    /// </summary>
    public string? CorrectionBias { get; init; }
}

/// <summary>The module names of a gated MLP's gate, up and down projections.</summary>
public sealed record MlpNames(string Gate, string Up, string Down)
{
    public static MlpNames Standard { get; } = new("gate_proj", "up_proj", "down_proj");

    /// <summary>Mixtral's experts: w1 gate, w3 up, w2 down (modeling_mixtral.py's MixtralBlockSparseTop2MLP).</summary>
    public static MlpNames Mixtral { get; } = new("w1", "w3", "w2");
}
