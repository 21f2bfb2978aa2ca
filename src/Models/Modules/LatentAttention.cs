using Converter.Compute;
using Converter.Models.Forward;
using Converter.Models.Rotary;

namespace Converter.Models.Modules;

/// <summary>
/// DeepSeek-V3's multi-head latent attention (<see cref="LatentAttentionSpec"/>), in transformers' unabsorbed form:
/// q = q_proj(x) or q_b_proj(norm(q_a_proj(x))); [c | k_pe] = kv_a_proj_with_mqa(x); [k_nope | v] per head =
/// kv_b_proj(kv_a_layernorm(c)); RoPE on q's rope part and on the one shared k_pe; each head attends with
/// [q_nope | q_pe]·[k_nope | k_pe] and its value; o_proj. Quantized as exllamav3 does (its MLAttention): q_proj or
/// q_a_proj with kv_a_proj_with_mqa on the block input, q_b_proj on the normed query latent, o_proj on the attention
/// result; kv_b_proj stays unquantized (exllamav3 folds it into the query and output, so it is never a GEMM there).
/// </summary>
public sealed class LatentAttention : IAttention
{
    private readonly TransformerSpec _spec;
    private readonly LatentAttentionSpec _mla;
    private readonly RotaryEmbedding? _rotary;
    private float[]? _queryNorm;
    private float[]? _kvNorm;

    /// <param name="module">The decoder block (<c>model.layers.N</c>), the owner of the linear groups.</param>
    /// <param name="rotary">The rope part's rotary embedding (null only for a NoPE layer).</param>
    public LatentAttention(string module, TransformerSpec spec, RotaryEmbedding? rotary, IDenseAlgebra? algebra = null)
    {
        _spec = spec;
        _mla = spec.LatentAttention ?? throw new ArgumentException($"{module}: the spec has no latent attention", nameof(spec));
        _rotary = rotary;
        Prefix = module + ".self_attn";
        int heads = spec.Heads, queryWidth = heads * _mla.QkHeadDim;
        if (_mla.QueryRank is { } rank)
        {
            QueryA = new Linear(Prefix + ".q_a_proj", spec.HiddenSize, rank, _mla.Bias, algebra: algebra);
            Query = new Linear(Prefix + ".q_b_proj", rank, queryWidth, false, algebra: algebra);
        }
        else
            Query = new Linear(Prefix + ".q_proj", spec.HiddenSize, queryWidth, false, algebra: algebra);
        KvA = new Linear(Prefix + ".kv_a_proj_with_mqa", spec.HiddenSize, _mla.KvRank + _mla.RopeDim, _mla.Bias, algebra: algebra);
        KvB = new Linear(Prefix + ".kv_b_proj", _mla.KvRank, heads * (_mla.NopeDim + _mla.ValueDim), false, algebra: algebra);
        O = new Linear(Prefix + ".o_proj", heads * _mla.ValueDim, spec.HiddenSize, _mla.Bias, algebra: algebra);

        // exllamav3's qmaps: block.attn.input (q or q_a, kv_a), block.attn.q_a (q_b), block.attn.o.
        var groups = new List<LinearGroup> { new(module, LinearSite.AttentionInput, QueryA is null ? [Query, KvA] : [QueryA, KvA]) };
        if (QueryA is not null)
            groups.Add(new LinearGroup(module, LinearSite.QueryLatent, [Query]));
        groups.Add(new LinearGroup(module, LinearSite.AttentionOutput, [O]));
        LinearGroups = groups;
    }

    /// <summary><c>model.layers.N.self_attn</c>.</summary>
    public string Prefix { get; }

    /// <summary>q_a_proj, or null without a query LoRA.</summary>
    public Linear? QueryA { get; }

    /// <summary>q_proj, or q_b_proj with a query LoRA: the projection that makes the heads' queries.</summary>
    public Linear Query { get; }

    public Linear KvA { get; }

    /// <summary>kv_b_proj: in no linear group, so it stays unquantized.</summary>
    public Linear KvB { get; }

    public Linear O { get; }

    public IReadOnlyList<LinearGroup> LinearGroups { get; }

    private string? QueryNormTensor => QueryA is null ? null : TensorNames.Weight(Prefix + ".q_a_layernorm");

    private string KvNormTensor => TensorNames.Weight(Prefix + ".kv_a_layernorm");

    public IEnumerable<string> OtherTensors => new[] { KvB.WeightTensor, KvNormTensor, QueryNormTensor }.OfType<string>();

    public void Load(IWeightSource weights)
    {
        foreach (var linear in Linears)
            weights.LoadLinear(linear);
        _kvNorm = WeightLoader.Read(weights.Tensors, KvNormTensor, _mla.KvRank);
        _queryNorm = QueryNormTensor is { } q ? WeightLoader.Read(weights.Tensors, q, _mla.QueryRank!.Value) : null;
    }

    public void Release()
    {
        foreach (var linear in Linears)
            linear.Release();
        _kvNorm = _queryNorm = null;
    }

    private IEnumerable<Linear> Linears => new[] { QueryA, Query, KvA, KvB, O }.OfType<Linear>();

    public Activations Attend(IForwardPass pass, Activations x, int tokens, ILinearInputObserver? observer)
    {
        int heads = _spec.Heads, nope = _mla.NopeDim, rope = _mla.RopeDim;
        pass.Observe(observer, LinearGroups[0], x);
        Activations q;
        if (QueryA is not null)
        {
            var latent = pass.Norm(pass.Linear(QueryA, x), _spec.Norm, _queryNorm ?? throw NotLoaded(), _spec.NormEps);
            pass.Observe(observer, LinearGroups[1], latent);
            q = pass.Linear(Query, latent);
        }
        else
            q = pass.Linear(Query, x);

        var compressed = pass.Linear(KvA, x);
        var latentKv = pass.Norm(pass.Columns(compressed, 1, 0, _mla.KvRank), _spec.Norm, _kvNorm ?? throw NotLoaded(), _spec.NormEps);
        var kPe = pass.Columns(compressed, 1, _mla.KvRank, rope);
        var kv = pass.Linear(KvB, latentKv);
        var qPe = pass.Columns(q, heads, nope, rope);
        if (_rotary is not null)
        {
            // rope_interleave pairs neighbours (transformers de-interleaves, then rotates halves: the same dot
            // products, since q and k are permuted alike and only q·k is used).
            var table = _rotary.TableFor(tokens);
            pass.Rope(qPe, tokens, heads, rope, table, _spec.RotaryPairing);
            pass.Rope(kPe, tokens, 1, rope, table, _spec.RotaryPairing);
        }
        var query = pass.JoinHeads(pass.Columns(q, heads, 0, nope), qPe, heads, sharedB: false);
        var key = pass.JoinHeads(pass.Columns(kv, heads, 0, nope), kPe, heads, sharedB: true);
        var value = pass.Columns(kv, heads, nope, _mla.ValueDim);
        var shape = new AttentionShape(heads, heads, _mla.QkHeadDim, null, _spec.AttentionScale, null, _mla.ValueDim);
        var attended = pass.Attend(query, key, value, tokens, shape);
        return attended;
    }

    public Activations Project(IForwardPass pass, Activations attended, ILinearInputObserver? observer)
    {
        pass.Observe(observer, LinearGroups[^1], attended);
        return pass.Linear(O, attended);
    }

    private InvalidOperationException NotLoaded() => new($"{Prefix}: the latent norms are not loaded");
}
