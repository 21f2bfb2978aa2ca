// The element-wise and attention kernels of a decoder block's forward on the GPU (src/Cuda/Models/CudaForwardBackend.cs).
// Each mirrors a host kernel of src/Compute in float32, in the same order of operations, so the two paths agree to
// float rounding (and FMA contraction).

#define FULL_MASK 0xffffffffu

__device__ __forceinline__ float warp_sum(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
__device__ float block_sum(float v)
{
    __shared__ float partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0)
        partial[warp] = v;
    __syncthreads();
    float total = 0.f;
    for (int w = 0; w < warps; w++)
        total += partial[w];
    return total;
}

// Norms (Compute/Normalization.cs) of every `width`-wide slice, one block per slice; y may be x (each thread
// rewrites only what it read, after the reductions). kind 0: RMSNorm, x·(1/√(mean(x²) + eps)) ⊙ w; kind 1: Gemma's
// RMSNorm with (1 + w); kind 2: LayerNorm without bias, (x − mean)·(1/√(var + eps)) ⊙ w.
extern "C" __global__ void norm(const float* x, const float* __restrict__ w, float eps, float* y, int width, int kind)
{
    long long base = (long long) blockIdx.x * width;
    float mean = 0.f;
    if (kind == 2)
    {
        float s = 0.f;
        for (int i = threadIdx.x; i < width; i += blockDim.x)
            s += x[base + i];
        mean = block_sum(s) / width;
    }
    float s = 0.f;
    for (int i = threadIdx.x; i < width; i += blockDim.x)
    {
        float v = x[base + i] - mean;
        s += v * v;
    }
    s = block_sum(s);
    float inv = 1.f / sqrtf(s / width + eps);
    for (int i = threadIdx.x; i < width; i += blockDim.x)
    {
        float scale = kind == 1 ? 1.f + w[i] : w[i];
        y[base + i] = (x[base + i] - mean) * inv * scale;
    }
}

// RoPE (Compute/Rope.cs) on x (rows·tokens, heads·headDim); token m sits at position m mod tokens because every
// calibration row is its own sequence. `half` frequencies rotate the first 2·half dimensions of each head (fewer
// than headDim when partial); pairs are (i, i + half) or, interleaved, (2i, 2i + 1). One thread per rotated pair.
extern "C" __global__ void rope(float* x, const float* __restrict__ cosTable, const float* __restrict__ sinTable,
    int tokens, int heads, int headDim, int half, int interleaved, long long pairs)
{
    for (long long p = (long long) blockIdx.x * blockDim.x + threadIdx.x; p < pairs; p += (long long) gridDim.x * blockDim.x)
    {
        int i = (int) (p % half);
        long long headIndex = p / half;
        long long token = headIndex / heads;
        int t = (int) (token % tokens);
        float* head = x + headIndex * headDim;
        int j = interleaved ? 2 * i : i, partner = interleaved ? j + 1 : i + half;
        float a = head[j], b = head[partner];
        float c = cosTable[(long long) t * half + i], s = sinTable[(long long) t * half + i];
        head[j] = a * c - b * s;
        head[partner] = b * c + a * s;
    }
}

// Causal (optionally sliding-window) softmax of attention scores (Compute/CausalAttention.cs): scores holds
// `count` rows of `tokens` keys, row r being query t = r mod tokens of some (sequence, head). Keys
// max(0, t − window + 1) ≤ s ≤ t get softmax(cap(scale · score)), the rest 0, where cap(v) = softCap·tanh(v/softCap)
// when softCap > 0 (Gemma 2) and v otherwise. One warp per row.
extern "C" __global__ void causal_softmax(float* scores, int tokens, float scale, float softCap, int window, long long count)
{
    long long row = (long long) blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= count)
        return;
    int lane = threadIdx.x & 31;
    int t = (int) (row % tokens);
    int first = t - (window - 1);
    if (first < 0)
        first = 0;
    float* s = scores + row * tokens;
    float m = __int_as_float(0xff800000);  // −∞ without math.h's macro (NVRTC compiles without headers)
    for (int j = first + lane; j <= t; j += 32)
    {
        float v = s[j] * scale;
        if (softCap > 0.f)
            v = tanhf(v / softCap) * softCap;
        s[j] = v;
        m = fmaxf(m, v);
    }
    m = warp_max(m);
    float sum = 0.f;
    for (int j = first + lane; j <= t; j += 32)
    {
        float e = expf(s[j] - m);
        s[j] = e;
        sum += e;
    }
    float inv = 1.f / warp_sum(sum);
    for (int j = lane; j < tokens; j += 32)
        s[j] = j >= first && j <= t ? s[j] * inv : 0.f;
}

// y += x (residual connections).
extern "C" __global__ void add_in_place(float* __restrict__ y, const float* __restrict__ x, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        y[i] += x[i];
}

// y (n/width rows of width) += bias, per row.
extern "C" __global__ void add_bias(float* __restrict__ y, const float* __restrict__ bias, int width, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        y[i] += bias[i % width];
}

// gate ← SiLU(gate) ⊙ up = (σ(gate)·gate)·up, as Compute/SwiGlu.cs orders it.
extern "C" __global__ void swiglu(float* __restrict__ gate, const float* __restrict__ up, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
    {
        float g = gate[i];
        float sigmoid = 1.f / (1.f + expf(-g));
        gate[i] = sigmoid * g * up[i];
    }
}

// gate ← GELU_tanh(gate) ⊙ up (Compute/GatedActivation.cs), 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))).
extern "C" __global__ void gelu_tanh_gate(float* __restrict__ gate, const float* __restrict__ up, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
    {
        float g = gate[i];
        gate[i] = 0.5f * g * (1.f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g))) * up[i];
    }
}

// *flag = 1 when any of x[0..n) is NaN or ±Inf (the Hessian drops such rows, §3.2; the host path then takes over).
extern "C" __global__ void flag_nonfinite(const float* __restrict__ x, long long n, int* flag)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
    {
        // All exponent bits set: ±Inf or NaN.
        if ((__float_as_uint(x[i]) & 0x7f800000u) == 0x7f800000u)
        {
            *flag = 1;
            return;
        }
    }
}

// y[0..n) = 0 (the sum a mixture of experts adds its experts' outputs into).
extern "C" __global__ void zero_fill(float* __restrict__ y, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        y[i] = 0.f;
}

// Whether (a, ia) ranks before (b, ib) among a router's experts: higher choice first, the lower index on a tie.
__device__ __forceinline__ bool ranks_before(float a, int ia, float b, int ib)
{
    return a > b || (a == b && ia < ib);
}

// Expert e's score from its logit: scoring 0 softmax, exp(l − max)·inv with inv = 1/Σ exp(l − max); 1 sigmoid.
__device__ __forceinline__ float router_score(float logit, int scoring, float max, float inv)
{
    return scoring == 0 ? expf(logit - max) * inv : 1.f / (1.f + expf(-logit));
}

// Top-k routing of each token (Compute/TopKRouter.cs, in its order of operations), one thread per token over its
// row of `experts` logits: scores (softmax or sigmoid); the choice is the score plus bias[e] when bias is given
// (sigmoid routing's correction bias); rank j takes the best expert that ranks after rank j − 1, so nothing needs
// marking; NaN choices are never taken and a slot left empty gets expert −1, weight 0. With `normalize` the weights
// are divided by (their sum in rank order + normEps), then multiplied by `scale`. Writes selected and weights
// (tokens, topK).
extern "C" __global__ void route_topk(const float* __restrict__ logits, int experts, int topK, int scoring, int normalize, float normEps,
    float scale, const float* __restrict__ bias, int* __restrict__ selected, float* __restrict__ weights, long long tokens)
{
    for (long long t = (long long) blockIdx.x * blockDim.x + threadIdx.x; t < tokens; t += (long long) gridDim.x * blockDim.x)
    {
        const float* l = logits + t * experts;
        float max = __int_as_float(0xff800000), inv = 1.f;
        if (scoring == 0)
        {
            for (int e = 0; e < experts; e++)
                max = fmaxf(max, l[e]);
            float sum = 0.f;
            for (int e = 0; e < experts; e++)
                sum += expf(l[e] - max);
            inv = 1.f / sum;
        }
        int* sel = selected + t * topK;
        float* w = weights + t * topK;
        for (int j = 0; j < topK; j++)
        {
            sel[j] = -1;
            w[j] = 0.f;
        }
        int previous = -1;
        float previousChoice = 0.f;
        for (int j = 0; j < topK; j++)
        {
            int best = -1;
            float bestChoice = 0.f, bestScore = 0.f;
            for (int e = 0; e < experts; e++)
            {
                float s = router_score(l[e], scoring, max, inv);
                float c = bias != nullptr ? s + bias[e] : s;
                if (c != c || (previous >= 0 && !ranks_before(previousChoice, previous, c, e)))
                    continue;
                if (best < 0 || ranks_before(c, e, bestChoice, best))
                {
                    best = e;
                    bestChoice = c;
                    bestScore = s;
                }
            }
            if (best < 0)
                break;
            sel[j] = best;
            w[j] = bestScore;
            previous = best;
            previousChoice = bestChoice;
        }
        if (normalize)
        {
            float sum = 0.f;
            for (int j = 0; j < topK; j++)
                sum += w[j];
            sum += normEps;
            for (int j = 0; j < topK; j++)
                w[j] /= sum;
        }
        if (scale != 1.f)
        {
            for (int j = 0; j < topK; j++)
                w[j] *= scale;
        }
    }
}

// Each expert's token list from route_topk's choices, one block per expert (blockDim a multiple of 32): the tokens
// that chose it in ascending order with their weights or, with everyToken (calibration), every token, weight 0 where
// it was not chosen. Expert e's list starts at e·tokens of lists/listWeights; counts[e] gets its length. Ordered by
// a block-wide prefix sum over each chunk of blockDim tokens, so the lists do not depend on thread timing.
extern "C" __global__ void expert_lists(const int* __restrict__ selected, const float* __restrict__ weights, int topK, long long tokens,
    int everyToken, int* __restrict__ lists, float* __restrict__ listWeights, int* __restrict__ counts)
{
    __shared__ int warpTotals[32];
    __shared__ int running;
    int e = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    int* list = lists + (long long) e * tokens;
    float* listWeight = listWeights + (long long) e * tokens;
    if (threadIdx.x == 0)
        running = 0;
    __syncthreads();
    for (long long start = 0; start < tokens; start += blockDim.x)
    {
        long long t = start + threadIdx.x;
        bool take = false;
        float w = 0.f;
        if (t < tokens)
        {
            for (int j = 0; j < topK; j++)
            {
                if (selected[t * topK + j] == e)
                {
                    take = true;
                    w = weights[t * topK + j];
                }
            }
            take = take || everyToken != 0;
        }
        unsigned ballot = __ballot_sync(FULL_MASK, take);
        if (lane == 0)
            warpTotals[warp] = __popc(ballot);
        __syncthreads();
        int position = running + __popc(ballot & ((1u << lane) - 1u));
        for (int i = 0; i < warp; i++)
            position += warpTotals[i];
        if (take)
        {
            list[position] = (int) t;
            listWeight[position] = w;
        }
        // Everyone has read running and warpTotals before they change.
        __syncthreads();
        if (threadIdx.x == 0)
        {
            for (int i = 0; i < warps; i++)
                running += warpTotals[i];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
        counts[e] = running;
}

// y (n/cols rows of cols) = the rows list[0..n/cols) of x: an expert's tokens, gathered.
extern "C" __global__ void gather_rows(const float* __restrict__ x, const int* __restrict__ list, int cols, float* __restrict__ y, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        y[i] = x[(long long) list[i / cols] * cols + i % cols];
}

// target[list[r]] += y[r]·w[r] for each row r of y (n/cols rows of cols), skipping weight 0 (tokens a calibration
// pass ran the expert on without choosing it): an expert's output into the mixture. The product is rounded before
// the sum (__fmul_rn keeps it out of an FMA), as the host and transformers' `index_add_(expert(x) * w)` round it.
// An expert's list holds each token once, so no two threads write one element.
extern "C" __global__ void scatter_add_rows(float* target, const float* __restrict__ y, const int* __restrict__ list, const float* __restrict__ w,
    int cols, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
    {
        long long r = i / cols;
        float weight = w[r];
        if (weight != 0.f)
            target[(long long) list[r] * cols + i % cols] += __fmul_rn(y[i], weight);
    }
}
