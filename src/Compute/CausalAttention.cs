using System.Buffers;
using System.Numerics.Tensors;

namespace Converter.Compute;

/// <summary>
/// Scaled dot-product self-attention of one sequence with a causal mask and grouped-query heads: query head h reads
/// key/value head h / (heads / kvHeads), as HF's repeat_kv does. Work is split into (head, block of queries)
/// items run in parallel; each item computes its scores and its weighted sum of values as two small GEMMs on
/// <see cref="MatMul"/>'s kernel (per-key dot products ran at ~5 GFLOP/s, call overhead on 64-wide heads).
/// </summary>
public static unsafe class CausalAttention
{
    // Queries per work item: 32 rows amortize the GEMM's 4×4 blocking and keep the wasted upper triangle of each
    // item's score block (≤ 32·32/2 entries) small against the keys before it.
    private const int QueryBlock = 32;

    /// <summary>
    /// output[t, h] = Σ_{s ≤ t} softmax_s(q[t,h]·k[s,g] / √headDim) · v[s,g], g = h / (heads / kvHeads).
    /// q and output are (tokens, heads·headDim), k and v (tokens, kvHeads·headDim), all row-major. With a
    /// <paramref name="window"/> (Mistral's sliding_window) only keys t − window &lt; s ≤ t are attended, as HF's
    /// sliding-window mask does. <paramref name="scale"/> replaces 1/√headDim (Gemma's query_pre_attn_scalar^−½);
    /// <paramref name="softCap"/> caps the scaled scores as cap·tanh(s/cap) before the mask (Gemma 2).
    /// <paramref name="sinks"/> (gpt-oss's learned attention sinks, one logit per query head, or empty) joins each
    /// head's softmax as one more logit that attends to nothing: it only adds exp(sink) to the denominator. With
    /// <paramref name="valueDim"/> the value heads (and so the output heads) are that wide instead of headDim
    /// (DeepSeek's latent attention: keys of nope + rope, values of v_head_dim).
    /// </summary>
    public static void Apply(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        int tokens, int heads, int kvHeads, int headDim, int? window = null, float? scale = null, float? softCap = null,
        ReadOnlySpan<float> sinks = default, int? valueDim = null)
    {
        if (!sinks.IsEmpty && sinks.Length != heads)
            throw new ArgumentException($"{sinks.Length} attention sinks for {heads} query heads", nameof(sinks));
        int dv = valueDim ?? headDim;
        if (window is <= 0)
            throw new ArgumentOutOfRangeException(nameof(window), window, "the attention window must be positive");
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw new ArgumentException($"{heads} query heads cannot be grouped over {kvHeads} key/value heads");
        if (dv <= 0)
            throw new ArgumentOutOfRangeException(nameof(valueDim), valueDim, "the value head width must be positive");
        long qSize = (long)tokens * heads * headDim, kvSize = (long)tokens * kvHeads * headDim, vSize = (long)tokens * kvHeads * dv;
        if (q.Length != qSize || output.Length != (long)tokens * heads * dv || k.Length != kvSize || v.Length != vSize)
            throw new ArgumentException($"attention operands do not match {tokens} tokens × {heads}/{kvHeads} heads × {headDim} (values {dv})");
        if (tokens == 0)
            return;

        // Per kv head: K as (tokens, d) and V transposed as (d, tokens), both contiguous, so that scores = Q·Kᵀ and
        // output = P·(Vᵀ)ᵀ are products of row-major operands.
        var keys = ArrayPool<float>.Shared.Rent((int)kvSize);
        var valuesT = ArrayPool<float>.Shared.Rent((int)vSize);
        try
        {
            for (int t = 0; t < tokens; t++)
            {
                for (int g = 0; g < kvHeads; g++)
                {
                    var src = k.Slice((t * kvHeads + g) * headDim, headDim);
                    src.CopyTo(keys.AsSpan((g * tokens + t) * headDim, headDim));
                    var vs = v.Slice((t * kvHeads + g) * dv, dv);
                    for (int i = 0; i < dv; i++)
                        valuesT[(g * dv + i) * tokens + t] = vs[i];
                }
            }
            fixed (float* pq = q, pk = keys, pv = valuesT, po = output, ps = sinks)
            {
                var s = new Shape(pq, pk, pv, po, sinks.IsEmpty ? null : ps, tokens, heads, kvHeads, headDim, dv, window ?? int.MaxValue,
                    scale ?? 1f / MathF.Sqrt(headDim), softCap ?? 0f);
                int blocks = (tokens + QueryBlock - 1) / QueryBlock;
                Parallel.For(0, heads * blocks, item => RunBlock(s, item % heads, item / heads));
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(keys);
            ArrayPool<float>.Shared.Return(valuesT);
        }
    }

    private static void RunBlock(Shape s, int head, int block)
    {
        int group = head / (s.Heads / s.KvHeads);
        int d = s.HeadDim, dv = s.ValueDim, qStride = s.Heads * d, oStride = s.Heads * dv;
        int t0 = block * QueryBlock, t1 = Math.Min(s.Tokens, t0 + QueryBlock), rows = t1 - t0;
        // Keys any query of the block may see: [first key of query t0, t1).
        int k0 = FirstKey(t0, s.Window), keys = t1 - k0;
        var buffer = ArrayPool<float>.Shared.Rent(rows * keys + rows * dv);
        try
        {
            fixed (float* scores = buffer)
            {
                float* result = scores + rows * keys;
                // scores (rows, keys) = Q_block · K[k0..t1)ᵀ, Q rows read in place with the tokens' stride.
                MatMul.MultiplyTransposedSerial(s.Q + (long)t0 * qStride + head * d, qStride,
                    s.K + ((long)group * s.Tokens + k0) * d, d, scores, keys, rows, keys, d);
                for (int r = 0; r < rows; r++)
                {
                    var row = new Span<float>(scores + r * keys, keys);
                    // Causal (and window) mask: only keys first ≤ j ≤ t get weight; the rest of the row is zero,
                    // so later tokens cannot influence position t.
                    int t = t0 + r, lo = FirstKey(t, s.Window) - k0, hi = t - k0 + 1;
                    var visible = row[lo..hi];
                    TensorPrimitives.Multiply(visible, s.Scale, visible);
                    if (s.SoftCap > 0)
                        SoftCap.InPlace(visible, s.SoftCap);
                    if (s.Sinks != null)
                        SoftmaxWithSink(visible, s.Sinks[head]);
                    else
                        Softmax.InPlace(visible);
                    row[..lo].Clear();
                    row[hi..].Clear();
                }
                // result (rows, dv) = P · (Vᵀ[:, k0..t1))ᵀ, then scattered to the head's columns.
                MatMul.MultiplyTransposedSerial(scores, keys, s.VT + (long)group * dv * s.Tokens + k0, s.Tokens, result, dv, rows, dv, keys);
                for (int r = 0; r < rows; r++)
                    new ReadOnlySpan<float>(result + r * dv, dv).CopyTo(new Span<float>(s.Output + (long)(t0 + r) * oStride + head * dv, dv));
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// transformers' gpt-oss eager attention: softmax over the scores and the sink together (shifted by their joint
    /// maximum), the sink's own probability dropped.
    /// </summary>
    private static void SoftmaxWithSink(Span<float> scores, float sink)
    {
        float max = MathF.Max(TensorPrimitives.Max(scores), sink);
        float sum = 0f;
        for (int i = 0; i < scores.Length; i++)
        {
            scores[i] = MathF.Exp(scores[i] - max);
            sum += scores[i];
        }
        sum += MathF.Exp(sink - max);
        TensorPrimitives.Divide(scores, sum, scores);
    }

    private static int FirstKey(int t, int window) => Math.Max(0, t - (window - 1));

    /// <summary>Operands as pointers for the parallel loop (spans cannot be captured); K and Vᵀ regrouped per kv head.</summary>
    private readonly struct Shape(float* q, float* k, float* vT, float* output, float* sinks, int tokens, int heads, int kvHeads, int headDim, int valueDim,
        int window, float scale, float softCap)
    {
        public readonly float* Q = q, K = k, VT = vT, Output = output, Sinks = sinks;
        public readonly int Tokens = tokens, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, ValueDim = valueDim, Window = window;
        public readonly float Scale = scale, SoftCap = softCap;
    }
}
