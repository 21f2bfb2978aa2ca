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
// ty = tid / 16 owns queries 4ty + i (i < 4), tx = tid % 16 owns keys 4tx + j (j < 4) of a score tile and output
// columns tx + 16e (e < EV). The 16 threads of one ty are one half-warp, so a query's row reductions are
// shuffles within 16 lanes. A thread's four queries and four keys are adjacent, so each step of the score tile's
// inner loop reads them as one float4 each (2 shared loads for 16 FMAs; with scalar loads the loop waited on
// shared memory): rows of the tiles are padded by 4 floats, which keeps them 16-byte aligned. Static shared memory
// stays under the 48 KiB a block gets without opting in (CudaForwardBackend.FusedAttentionSharedBytes mirrors the
// arrays below; HostSideTests checks it).

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
#define PAD 4

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
    // qs[c][query], ks[c][key]: a chunk of DC dims of the tile's queries and keys; ps[query][key]: the tile's weights.
    alignas(16) __shared__ float qs[DC][BQ + PAD];
    alignas(16) __shared__ float ks[DC][BK + PAD];
    alignas(16) __shared__ float ps[BQ][BK + PAD];
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
        // Scores of the tile: acc[i][j] = q[q0 + 4ty + i] · k[k0 + 4tx + j], over the head's dims in chunks of DC.
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
                float4 qa = *reinterpret_cast<const float4*>(&qs[c][4 * ty]);
                float4 kb = *reinterpret_cast<const float4*>(&ks[c][4 * tx]);
                float a[4] = { qa.x, qa.y, qa.z, qa.w };
                float b[4] = { kb.x, kb.y, kb.z, kb.w };
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
            int t = q0 + 4 * ty + i;
            int first = t - (window - 1);
            float tileMax = negInf;
#pragma unroll
            for (int j = 0; j < 4; j++)
            {
                int s = k0 + 4 * tx + j;
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
            float p[4];
#pragma unroll
            for (int j = 0; j < 4; j++)
            {
                p[j] = acc[i][j] == negInf ? 0.f : expf(acc[i][j] - base);
                rowSum += p[j];
            }
            *reinterpret_cast<float4*>(&ps[4 * ty + i][4 * tx]) = make_float4(p[0], p[1], p[2], p[3]);
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
            for (int r = 0; r < VC; r += 4)
            {
                // Four keys' weights of each of the thread's queries as one float4 per query.
                float p[4][4];
#pragma unroll
                for (int i = 0; i < 4; i++)
                {
                    float4 w = *reinterpret_cast<const float4*>(&ps[4 * ty + i][v0 + r]);
                    p[i][0] = w.x;
                    p[i][1] = w.y;
                    p[i][2] = w.z;
                    p[i][3] = w.w;
                }
#pragma unroll
                for (int rr = 0; rr < 4; rr++)
                {
#pragma unroll
                    for (int e = 0; e < EV; e++)
                    {
                        float value = vs[r + rr][tx + 16 * e];
#pragma unroll
                        for (int i = 0; i < 4; i++)
                            o[i][e] += p[i][rr] * value;
                    }
                }
            }
            __syncthreads();
        }
    }

#pragma unroll
    for (int i = 0; i < 4; i++)
    {
        int t = q0 + 4 * ty + i;
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
