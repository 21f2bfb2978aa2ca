// Fused causal attention of the GPU forward (src/Cuda/Models/CudaForwardBackend.cs) for long calibration rows, in
// the manner of flash attention: each block takes BQ queries of one (row, head), streams the keys and values it may
// see through shared memory in tiles of BK, and keeps an online softmax (running maximum m, running denominator l,
// output accumulated unnormalized and rescaled by exp(m_old − m_new) whenever the maximum grows), so the
// tokens × tokens scores of the batched-product path are never written. Exactly the semantics of forward.cu's
// causal_softmax and Compute/CausalAttention.cs: query head h reads key/value head h / (heads / kvHeads); keys
// max(0, t − window + 1) ≤ s ≤ t; logits cap(scale · q·k) with cap(v) = softCap·tanh(v/softCap) when softCap > 0;
// with sinks (gpt-oss) head h's sink logit joins the maximum and the denominator and attends to nothing. FP32
// throughout; only the order of the sums differs from the other path.
//
// Compiled once per (head width, value width) with -DATTENTION_HEAD_DIM=d -DATTENTION_VALUE_DIM=dv, so the
// per-thread output accumulators are a fixed-size register array. Layout of a block's 256 threads: a 16 × 16 grid,
// ty = tid / 16 owns queries ty + 16i (i < 4), tx = tid % 16 owns keys tx + 16j (j < 4) of a score tile and output
// columns tx + 16e (e < EV). The 16 threads of one ty are one half-warp, so a query's row reductions are
// shuffles within 16 lanes. Static shared memory stays under the 48 KiB a block gets without opting in
// (CudaForwardBackend.FusedAttentionSharedBytes mirrors the arrays below; HostSideTests checks it).

#define FULL_MASK 0xffffffffu
#define HEAD_DIM ATTENTION_HEAD_DIM
#define VALUE_DIM ATTENTION_VALUE_DIM
#define BQ 64
#define BK 64
#define DC 16
#define VC 16
#define THREADS 256
#define EV ((VALUE_DIM + 15) / 16)
#define VALUE_PAD (EV * 16)

static_assert(VALUE_DIM <= 256, "the output accumulators hold at most 16 columns per thread");

__device__ __forceinline__ float half_warp_max(float v)
{
    for (int offset = 8; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

__device__ __forceinline__ float half_warp_sum(float v)
{
    for (int offset = 8; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

// q (rows·tokens, heads·HEAD_DIM), k (rows·tokens, kvHeads·HEAD_DIM), v (rows·tokens, kvHeads·VALUE_DIM) and output
// (rows·tokens, heads·VALUE_DIM), row-major; every row is its own sequence of `tokens`. Grid: one block per
// (row, head, tile of BQ queries), rows·heads·⌈tokens/BQ⌉ blocks of 256 threads; sinks is null when there are none.
extern "C" __global__ void __launch_bounds__(THREADS)
causal_attention(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v, float* __restrict__ output,
    int tokens, int heads, int kvHeads, float scale, float softCap, int window, const float* __restrict__ sinks)
{
    __shared__ float qs[DC][BQ + 1];
    __shared__ float ks[DC][BK + 1];
    __shared__ float ps[BK][BQ + 1];
    __shared__ float vs[VC][VALUE_PAD];

    const float negInf = __int_as_float(0xff800000);  // −∞ without math.h's macro (NVRTC compiles without headers)
    int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
    int tiles = (tokens + BQ - 1) / BQ;
    // The last query tiles see the most keys: every (row, head)'s last tile is launched first, so the short ones
    // fill the tail. The grid is exactly rows·heads·tiles blocks.
    unsigned int rowHeads = gridDim.x / tiles;
    int tile = tiles - 1 - (int) (blockIdx.x / rowHeads);
    long long rowHead = blockIdx.x % rowHeads;
    int h = (int) (rowHead % heads);
    long long row = rowHead / heads;
    int g = h / (heads / kvHeads);
    int q0 = tile * BQ;
    long long token0 = row * tokens;
    long long queryWidth = (long long) heads * HEAD_DIM, keyWidth = (long long) kvHeads * HEAD_DIM;
    long long valueWidth = (long long) kvHeads * VALUE_DIM, outputWidth = (long long) heads * VALUE_DIM;

    float m[4], l[4], o[4][EV];
    float sink = sinks != 0 ? sinks[h] : negInf;
#pragma unroll
    for (int i = 0; i < 4; i++)
    {
        // With a sink the softmax starts from its logit alone: maximum sink, denominator exp(sink − sink) = 1.
        m[i] = sink;
        l[i] = sinks != 0 ? 1.f : 0.f;
#pragma unroll
        for (int e = 0; e < EV; e++)
            o[i][e] = 0.f;
    }

    // Keys the tile's first query may see start at q0 − window + 1; the last query (the tile's last, or the row's) ends them.
    int firstKey = q0 - (window - 1);
    if (firstKey < 0)
        firstKey = 0;
    int lastQuery = q0 + BQ - 1 < tokens - 1 ? q0 + BQ - 1 : tokens - 1;
    for (int k0 = firstKey / BK * BK; k0 <= lastQuery; k0 += BK)
    {
        // Scores of the tile: acc[i][j] = q[q0 + ty + 16i] · k[k0 + tx + 16j], over the head's dims in chunks of DC.
        float acc[4][4];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++)
                acc[i][j] = 0.f;
        for (int c0 = 0; c0 < HEAD_DIM; c0 += DC)
        {
            for (int idx = tid; idx < BQ * DC; idx += THREADS)
            {
                int r = idx / DC, c = idx % DC;
                int t = q0 + r, dim = c0 + c;
                qs[c][r] = t < tokens && dim < HEAD_DIM ? q[(token0 + t) * queryWidth + (long long) h * HEAD_DIM + dim] : 0.f;
                int s = k0 + r;
                ks[c][r] = s < tokens && dim < HEAD_DIM ? k[(token0 + s) * keyWidth + (long long) g * HEAD_DIM + dim] : 0.f;
            }
            __syncthreads();
#pragma unroll
            for (int c = 0; c < DC; c++)
            {
                float a[4], b[4];
#pragma unroll
                for (int i = 0; i < 4; i++)
                    a[i] = qs[c][ty + 16 * i];
#pragma unroll
                for (int j = 0; j < 4; j++)
                    b[j] = ks[c][tx + 16 * j];
#pragma unroll
                for (int i = 0; i < 4; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++)
                        acc[i][j] += a[i] * b[j];
            }
            __syncthreads();
        }

        // Scale, cap and mask; fold the tile into each query's running softmax; the tile's weights go to ps.
#pragma unroll
        for (int i = 0; i < 4; i++)
        {
            int t = q0 + ty + 16 * i;
            int first = t - (window - 1);
            float tileMax = negInf;
#pragma unroll
            for (int j = 0; j < 4; j++)
            {
                int s = k0 + tx + 16 * j;
                bool visible = t < tokens && s <= t && s >= first;
                float x = acc[i][j] * scale;
                if (softCap > 0.f)
                    x = tanhf(x / softCap) * softCap;
                acc[i][j] = visible ? x : negInf;
                tileMax = fmaxf(tileMax, acc[i][j]);
            }
            tileMax = half_warp_max(tileMax);
            float mNew = fmaxf(m[i], tileMax);
            // Nothing visible yet (a window's early tiles, a query past the row's end): every weight is 0, and
            // subtracting 0 instead of −∞ keeps exp from producing NaN.
            float base = mNew == negInf ? 0.f : mNew;
            float alpha = expf(m[i] - base);
            float rowSum = 0.f;
#pragma unroll
            for (int j = 0; j < 4; j++)
            {
                float p = acc[i][j] == negInf ? 0.f : expf(acc[i][j] - base);
                ps[tx + 16 * j][ty + 16 * i] = p;
                rowSum += p;
            }
            rowSum = half_warp_sum(rowSum);
            l[i] = l[i] * alpha + rowSum;
            m[i] = mNew;
#pragma unroll
            for (int e = 0; e < EV; e++)
                o[i][e] *= alpha;
        }
        __syncthreads();

        // o[i][e] += Σ_s p[i][s] · v[s][tx + 16e], the tile's values in chunks of VC keys (columns past VALUE_DIM are 0).
        for (int v0 = 0; v0 < BK; v0 += VC)
        {
            for (int idx = tid; idx < VC * VALUE_PAD; idx += THREADS)
            {
                int r = idx / VALUE_PAD, c = idx % VALUE_PAD;
                int s = k0 + v0 + r;
                vs[r][c] = s < tokens && c < VALUE_DIM ? v[(token0 + s) * valueWidth + (long long) g * VALUE_DIM + c] : 0.f;
            }
            __syncthreads();
#pragma unroll
            for (int r = 0; r < VC; r++)
            {
                float p[4];
#pragma unroll
                for (int i = 0; i < 4; i++)
                    p[i] = ps[v0 + r][ty + 16 * i];
#pragma unroll
                for (int e = 0; e < EV; e++)
                {
                    float value = vs[r][tx + 16 * e];
#pragma unroll
                    for (int i = 0; i < 4; i++)
                        o[i][e] += p[i] * value;
                }
            }
            __syncthreads();
        }
    }

#pragma unroll
    for (int i = 0; i < 4; i++)
    {
        int t = q0 + ty + 16 * i;
        if (t >= tokens)
            continue;
        float inv = 1.f / l[i];
        float* out = output + (token0 + t) * outputWidth + (long long) h * VALUE_DIM;
#pragma unroll
        for (int e = 0; e < EV; e++)
        {
            int c = tx + 16 * e;
            if (c < VALUE_DIM)
                out[c] = o[i][e] * inv;
        }
    }
}
