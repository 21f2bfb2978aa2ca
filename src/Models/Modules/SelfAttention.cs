using Converter.Compute;
using Converter.Models.Rotary;

namespace Converter.Models.Modules;

/// <summary>
/// The attention half of a decoder block: q/k/v projections, optional per-head q/k RMSNorm (Qwen3), RoPE, causal
/// grouped-query attention within each row, o projection.
/// </summary>
public sealed class SelfAttention
{
    private readonly TransformerSpec _spec;
    private readonly RotaryEmbedding _rotary;
    private float[]? _qNorm;
    private float[]? _kNorm;

    public SelfAttention(string prefix, TransformerSpec spec, RotaryEmbedding rotary, IDenseAlgebra? algebra = null)
    {
        _spec = spec;
        _rotary = rotary;
        Prefix = prefix;
        Q = new Linear(prefix + ".q_proj", spec.HiddenSize, spec.QueryWidth, spec.QkvBias, algebra: algebra);
        K = new Linear(prefix + ".k_proj", spec.HiddenSize, spec.KeyValueWidth, spec.QkvBias, algebra: algebra);
        V = new Linear(prefix + ".v_proj", spec.HiddenSize, spec.KeyValueWidth, spec.QkvBias, algebra: algebra);
        O = new Linear(prefix + ".o_proj", spec.QueryWidth, spec.HiddenSize, spec.OutputBias, algebra: algebra);
    }

    /// <summary><c>model.layers.N.self_attn</c>.</summary>
    public string Prefix { get; }

    public Linear Q { get; }

    public Linear K { get; }

    public Linear V { get; }

    public Linear O { get; }

    public RotaryEmbedding Rotary => _rotary;

    /// <summary>Qwen3's per-head q_norm weight (head_dim), or null when the model has none.</summary>
    public float[]? QNorm => _qNorm;

    /// <summary>Qwen3's per-head k_norm weight (head_dim), or null when the model has none.</summary>
    public float[]? KNorm => _kNorm;

    public IEnumerable<string> NormTensors => _spec.QkNorm
        ? [TensorNames.Weight(Prefix + ".q_norm"), TensorNames.Weight(Prefix + ".k_norm")]
        : [];

    public void Load(IWeightSource weights)
    {
        foreach (var linear in new[] { Q, K, V, O })
            weights.LoadLinear(linear);
        if (_spec.QkNorm)
        {
            _qNorm = WeightLoader.Read(weights.Tensors, TensorNames.Weight(Prefix + ".q_norm"), _spec.HeadDim);
            _kNorm = WeightLoader.Read(weights.Tensors, TensorNames.Weight(Prefix + ".k_norm"), _spec.HeadDim);
        }
    }

    public void Release()
    {
        foreach (var linear in new[] { Q, K, V, O })
            linear.Release();
        _qNorm = _kNorm = null;
    }

    /// <summary>Attention output (rows·tokens, hidden) for the normed block input <paramref name="x"/>.</summary>
    public Matrix Forward(Matrix x, SequenceBatch batch, LinearGroup qkv, LinearGroup output, ILinearInputObserver? observer)
    {
        observer?.OnLinearInput(qkv, x);
        var q = Q.Forward(x);
        var k = K.Forward(x);
        var v = V.Forward(x);
        if (_spec.QkNorm)
        {
            // Qwen3 normalizes each head vector (width head_dim) before RoPE.
            RmsNorm.Apply(q.Data, _qNorm, _spec.RmsNormEps, q.Data);
            RmsNorm.Apply(k.Data, _kNorm, _spec.RmsNormEps, k.Data);
        }
        var table = _rotary.TableFor(batch.Tokens);
        var attended = new Matrix(x.Rows, _spec.QueryWidth);
        for (int r = 0; r < batch.Rows; r++)
        {
            // Every row is its own sequence starting at position 0.
            Rope.Apply(batch.RowOf(q, r), batch.Tokens, _spec.Heads, _spec.HeadDim, table);
            Rope.Apply(batch.RowOf(k, r), batch.Tokens, _spec.KvHeads, _spec.HeadDim, table);
            CausalAttention.Apply(batch.RowOf(q, r), batch.RowOf(k, r), batch.RowOf(v, r), batch.RowOf(attended, r),
                batch.Tokens, _spec.Heads, _spec.KvHeads, _spec.HeadDim, _spec.SlidingWindow);
        }
        observer?.OnLinearInput(output, attended);
        return O.Forward(attended);
    }
}
