namespace Converter.Models;

/// <summary>Where in a module a set of linear layers reads its input.</summary>
public enum LinearSite
{
    /// <summary>q_proj, k_proj, v_proj: the normed block input.</summary>
    AttentionInput,
    /// <summary>
    /// Latent attention's q_b_proj: the normed q_a_proj output (exllamav3's <c>block.attn.q_a</c>); q_a_proj and
    /// kv_a_proj_with_mqa read the block input (<see cref="AttentionInput"/>).
    /// </summary>
    QueryLatent,
    /// <summary>o_proj: the attention result.</summary>
    AttentionOutput,
    /// <summary>gate_proj, up_proj: the normed residual after attention.</summary>
    MlpInput,
    /// <summary>down_proj: SiLU(gate)·up.</summary>
    MlpOutput,
    /// <summary>
    /// gate and up of every routed expert: the normed residual after attention, which the router reads too. One
    /// group for all experts, as exllamav3's <c>block.mlp.input</c>: calibration runs every expert on every token, so
    /// they all multiply the same rows and one Hessian serves them (E copies would cost E times the capture work and
    /// E·k² of accumulators).
    /// </summary>
    ExpertInput,
    /// <summary>One routed expert's down projection: act(gate)·up of that expert's tokens.</summary>
    ExpertOutput,
    /// <summary>lm_head: the final-normed hidden states.</summary>
    Head,
}

/// <summary>
/// Linear layers that multiply the same input activations, so one input Hessian serves them all. The group is
/// fixed when the module is built (before any weights are loaded), so a quantizer can prepare for it up front.
/// </summary>
public sealed record LinearGroup(string Module, LinearSite Site, IReadOnlyList<Linear> Linears)
{
    /// <summary>Width of the shared input.</summary>
    public int InFeatures => Linears[0].InFeatures;

    /// <summary>The members' outputs in all.</summary>
    public long OutFeatures => Linears.Sum(l => (long)l.OutFeatures);

    /// <summary>The position of <paramref name="linear"/> among <see cref="Linears"/>.</summary>
    public int MemberOf(Linear linear)
    {
        for (int m = 0; m < Linears.Count; m++)
        {
            if (ReferenceEquals(Linears[m], linear))
                return m;
        }
        throw new ArgumentException($"{linear.Name} is not a member of {this}", nameof(linear));
    }

    /// <summary>
    /// Where the group's input is made in a block's forward, in the order the forward reaches it: what reads the block's
    /// input first (0), then a latent query, the attention's output, the MLP's input and its output. A group's input
    /// depends only on the linears of groups with a smaller value, so a sequential capture (GPTQ's "true sequential")
    /// quantizes a block one value at a time.
    /// </summary>
    public int Sublayer => SublayerOf(Site);

    /// <summary>The <see cref="Sublayer"/> of a group at <paramref name="site"/>.</summary>
    public static int SublayerOf(LinearSite site) => site switch
    {
        LinearSite.AttentionInput => 0,
        LinearSite.QueryLatent => 1,
        LinearSite.AttentionOutput => 2,
        LinearSite.MlpInput or LinearSite.ExpertInput => 3,
        LinearSite.MlpOutput or LinearSite.ExpertOutput => 4,
        _ => 5,
    };

    /// <summary>
    /// "model.layers.3 AttentionInput (self_attn.q_proj, self_attn.k_proj, self_attn.v_proj)"; a group of many linears
    /// (every expert's gate and up) names its first and last, so that a log line stays a line. The converter seeds
    /// the group's input signs with this text.
    /// </summary>
    public override string ToString() => Linears.Count <= MaxNamed
        ? $"{Module} {Site} ({string.Join(", ", Linears.Select(l => ShortName(l.Name)))})"
        : $"{Module} {Site} ({ShortName(Linears[0].Name)} … {ShortName(Linears[^1].Name)}, {Linears.Count} linears)";

    /// <summary>Linears a group's text names one by one (a dense MLP's or attention's groups have at most three).</summary>
    private const int MaxNamed = 4;

    private string ShortName(string name) => name.StartsWith(Module + ".", StringComparison.Ordinal) ? name[(Module.Length + 1)..] : name;
}
