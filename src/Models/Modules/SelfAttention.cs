using Converter.Compute;
using Converter.Models.Forward;
using Converter.Models.Rotary;

namespace Converter.Models.Modules;

/// <summary>
/// The attention half of a decoder block: q/k/v projections (or slices of a fused qkv_proj), optional q/k norms,
/// RoPE on the rotated dimensions (none on NoPE layers), causal grouped-query attention within each row with the
/// layer's window, scale and soft cap, o projection.
/// </summary>
public sealed class SelfAttention : IAttention
{
    private readonly TransformerSpec _spec;
    private readonly LayerAttention _layer;
    private float[]? _qNorm;
    private float[]? _kNorm;
    private float[]? _sinks;

    /// <param name="module">The decoder block (<c>model.layers.N</c>), the owner of the linear groups.</param>
    /// <param name="rotary">The layer's rotary table source; null for a layer without RoPE.</param>
    public SelfAttention(string module, TransformerSpec spec, LayerAttention layer, RotaryEmbedding? rotary, IDenseAlgebra? algebra = null)
    {
        _spec = spec;
        _layer = layer;
        Rotary = rotary;
        string prefix = Prefix = module + ".self_attn";
        if (spec.FusedQkv)
        {
            // Phi-3's qkv_proj stacks q, k and v by rows (modeling_phi3.py splits query_pos = heads·head_dim, then kv).
            string fused = TensorNames.Weight(prefix + ".qkv_proj");
            int rows = spec.QueryWidth + 2 * spec.KeyValueWidth;
            Q = new Linear(prefix + ".q_proj", spec.HiddenSize, spec.QueryWidth, false, fused, algebra, new FusedRows(rows, 0));
            K = new Linear(prefix + ".k_proj", spec.HiddenSize, spec.KeyValueWidth, false, fused, algebra, new FusedRows(rows, spec.QueryWidth));
            V = new Linear(prefix + ".v_proj", spec.HiddenSize, spec.KeyValueWidth, false, fused, algebra,
                new FusedRows(rows, spec.QueryWidth + spec.KeyValueWidth));
        }
        else
        {
            Q = new Linear(prefix + ".q_proj", spec.HiddenSize, spec.QueryWidth, spec.QkvBias, algebra: algebra);
            K = new Linear(prefix + ".k_proj", spec.HiddenSize, spec.KeyValueWidth, spec.QkvBias, algebra: algebra);
            V = new Linear(prefix + ".v_proj", spec.HiddenSize, spec.KeyValueWidth, spec.QkvBias, algebra: algebra);
        }
        O = new Linear(prefix + ".o_proj", spec.QueryWidth, spec.HiddenSize, spec.OutputBias, algebra: algebra);
        LinearGroups = [new LinearGroup(module, LinearSite.AttentionInput, [Q, K, V]), new LinearGroup(module, LinearSite.AttentionOutput, [O])];
    }

    /// <summary>q/k/v on the block's normed input, o on the attention result.</summary>
    public IReadOnlyList<LinearGroup> LinearGroups { get; }

    /// <summary><c>model.layers.N.self_attn</c>.</summary>
    public string Prefix { get; }

    public Linear Q { get; }

    public Linear K { get; }

    public Linear V { get; }

    public Linear O { get; }

    /// <summary>The layer's rotary embedding, or null on a NoPE layer.</summary>
    public RotaryEmbedding? Rotary { get; }

    /// <summary>The attention's tensors that are not linears: q/k norms and sinks, where the architecture has them.</summary>
    public IEnumerable<string> OtherTensors => (_spec.QkNorm != QkNormPlacement.None
        ? [TensorNames.Weight(Prefix + ".q_norm"), TensorNames.Weight(Prefix + ".k_norm")]
        : Array.Empty<string>()).Concat(_spec.AttentionSinks ? [SinksTensor] : []);

    /// <summary><c>self_attn.sinks</c>, one logit per query head.</summary>
    public string SinksTensor => Prefix + ".sinks";

    private int QNormWidth => _spec.QkNorm == QkNormPlacement.WholeProjection ? _spec.QueryWidth : _spec.HeadDim;

    private int KNormWidth => _spec.QkNorm == QkNormPlacement.WholeProjection ? _spec.KeyValueWidth : _spec.HeadDim;

    public void Load(IWeightSource weights)
    {
        foreach (var linear in new[] { Q, K, V, O })
            weights.LoadLinear(linear);
        if (_spec.QkNorm != QkNormPlacement.None)
        {
            _qNorm = WeightLoader.Read(weights.Tensors, TensorNames.Weight(Prefix + ".q_norm"), QNormWidth);
            _kNorm = WeightLoader.Read(weights.Tensors, TensorNames.Weight(Prefix + ".k_norm"), KNormWidth);
        }
        if (_spec.AttentionSinks)
            _sinks = WeightLoader.Read(weights.Tensors, SinksTensor, _spec.Heads);
    }

    public void Release()
    {
        foreach (var linear in new[] { Q, K, V, O })
            linear.Release();
        _qNorm = _kNorm = _sinks = null;
    }

    /// <summary>The heads' attended values (rows·tokens, heads·headDim) for the block's attention input <paramref name="x"/>, before o_proj.</summary>
    public Activations Attend(IForwardPass pass, Activations x, int tokens, ILinearInputObserver? observer)
    {
        pass.Observe(observer, LinearGroups[0], x);
        var q = pass.Linear(Q, x);
        var k = pass.Linear(K, x);
        var v = pass.Linear(V, x);
        if (_spec.QkNorm != QkNormPlacement.None)
        {
            // Per head (Qwen3, Gemma 3) or over the whole projection (OLMo), before RoPE.
            q = pass.Norm(q, _spec.Norm, _qNorm ?? throw NotLoaded(), _spec.NormEps);
            k = pass.Norm(k, _spec.Norm, _kNorm ?? throw NotLoaded(), _spec.NormEps);
        }
        if (Rotary is not null)
        {
            var table = Rotary.TableFor(tokens);
            pass.Rope(q, tokens, _spec.Heads, _spec.HeadDim, table, _spec.RotaryPairing);
            pass.Rope(k, tokens, _spec.KvHeads, _spec.HeadDim, table, _spec.RotaryPairing);
        }
        var shape = new AttentionShape(_spec.Heads, _spec.KvHeads, _spec.HeadDim, _layer.Window, _spec.AttentionScale, _spec.AttentionSoftCap)
        {
            Sinks = _spec.AttentionSinks ? _sinks ?? throw new InvalidOperationException($"{Prefix}: sinks are not loaded") : ReadOnlyMemory<float>.Empty,
        };
        var attended = pass.Attend(q, k, v, tokens, shape);
        return attended;
    }

    public Activations Project(IForwardPass pass, Activations attended, ILinearInputObserver? observer)
    {
        pass.Observe(observer, LinearGroups[1], attended);
        return pass.Linear(O, attended);
    }

    private InvalidOperationException NotLoaded() => new($"{Prefix}: q/k norms are not loaded");
}
