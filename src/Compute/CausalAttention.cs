using System.Buffers;
using System.Numerics.Tensors;

namespace Converter.Compute;

/// <summary>
/// Scaled dot-product self-attention of one sequence with a causal mask and grouped-query heads: query head h reads
/// key/value head h / (heads / kvHeads), as HF's repeat_kv does.
/// </summary>
public static unsafe class CausalAttention
{
    // Queries per parallel work item: enough work to amortize scheduling, small enough to balance the triangle.
    private const int QueryBlock = 16;

    /// <summary>
    /// output[t, h] = Σ_{s ≤ t} softmax_s(q[t,h]·k[s,g] / √headDim) · v[s,g], g = h / (heads / kvHeads).
    /// q and output are (tokens, heads·headDim), k and v (tokens, kvHeads·headDim), all row-major. With a
    /// <paramref name="window"/> (Mistral's sliding_window) only keys t − window &lt; s ≤ t are attended, as HF's
    /// sliding-window mask does.
    /// </summary>
    public static void Apply(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        int tokens, int heads, int kvHeads, int headDim, int? window = null)
    {
        if (window is <= 0)
            throw new ArgumentOutOfRangeException(nameof(window), window, "the attention window must be positive");
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw new ArgumentException($"{heads} query heads cannot be grouped over {kvHeads} key/value heads");
        long qSize = (long)tokens * heads * headDim, kvSize = (long)tokens * kvHeads * headDim;
        if (q.Length != qSize || output.Length != qSize || k.Length != kvSize || v.Length != kvSize)
            throw new ArgumentException($"attention operands do not match {tokens} tokens × {heads}/{kvHeads} heads × {headDim}");
        if (tokens == 0)
            return;
        fixed (float* pq = q, pk = k, pv = v, po = output)
        {
            var s = new Shape(pq, pk, pv, po, tokens, heads, kvHeads, headDim, window ?? int.MaxValue);
            int blocks = (tokens + QueryBlock - 1) / QueryBlock;
            Parallel.For(0, heads * blocks, item => RunBlock(s, item % heads, item / heads));
        }
    }

    private static void RunBlock(Shape s, int head, int block)
    {
        int group = head / (s.Heads / s.KvHeads);
        int d = s.HeadDim, qStride = s.Heads * d, kvStride = s.KvHeads * d;
        float scale = 1f / MathF.Sqrt(d);
        int t0 = block * QueryBlock, t1 = Math.Min(s.Tokens, t0 + QueryBlock);
        var rented = ArrayPool<float>.Shared.Rent(t1);
        try
        {
            for (int t = t0; t < t1; t++)
            {
                var query = new ReadOnlySpan<float>(s.Q + (long)t * qStride + head * d, d);
                // Causal mask: only keys first ≤ j ≤ t are scored at all, so later tokens cannot influence position t.
                int first = Math.Max(0, t - (s.Window - 1));
                var scores = rented.AsSpan(0, t + 1 - first);
                for (int j = first; j <= t; j++)
                    scores[j - first] = TensorPrimitives.Dot(query, new ReadOnlySpan<float>(s.K + (long)j * kvStride + group * d, d)) * scale;
                Softmax.InPlace(scores);
                var result = new Span<float>(s.Output + (long)t * qStride + head * d, d);
                result.Clear();
                for (int j = first; j <= t; j++)
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(s.V + (long)j * kvStride + group * d, d), scores[j - first], result, result);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>Operands as pointers for the parallel loop (spans cannot be captured).</summary>
    private readonly struct Shape(float* q, float* k, float* v, float* output, int tokens, int heads, int kvHeads, int headDim, int window)
    {
        public readonly float* Q = q, K = k, V = v, Output = output;
        public readonly int Tokens = tokens, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Window = window;
    }
}
