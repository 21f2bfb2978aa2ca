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
extern "C" __global__ void norm_rows(const float* x, const float* __restrict__ w, float eps, float* y, int width, int kind)
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
// `count` rows of `tokens` keys, row r being query t = r mod tokens of head h = (r / tokens) mod heads of some
// sequence. Keys max(0, t − window + 1) ≤ s ≤ t get softmax(cap(scale · score)), the rest 0, where
// cap(v) = softCap·tanh(v/softCap) when softCap > 0 (Gemma 2) and v otherwise. With sinks (gpt-oss; null when none)
// head h's sink logit joins the softmax's maximum and denominator and gets no key. One warp per row.
extern "C" __global__ void causal_softmax(float* scores, int tokens, float scale, float softCap, int window, long long count,
    const float* __restrict__ sinks, int heads)
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
    float sink = 0.f;
    if (sinks != 0)
    {
        sink = sinks[(row / tokens) % heads];
        m = fmaxf(m, sink);
    }
    float sum = 0.f;
    for (int j = first + lane; j <= t; j += 32)
    {
        float e = expf(s[j] - m);
        s[j] = e;
        sum += e;
    }
    sum = warp_sum(sum);
    if (sinks != 0)
        sum += expf(sink - m);
    float inv = 1.f / sum;
    for (int j = lane; j < tokens; j += 32)
        s[j] = j >= first && j <= t ? s[j] * inv : 0.f;
}

// y += x (residual connections).
extern "C" __global__ void add_in_place(float* __restrict__ y, const float* __restrict__ x, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        y[i] += x[i];
}

// Per row r, head h < heads and column j < width: dst[r·dstCols + h·dstStride + dstOffset + j] =
// src[r·srcCols + h·srcStride + srcOffset + j], n = rows·heads·width (srcStride 0: every head reads the same part).
// Latent attention's splits (IForwardPass.Columns) and joins (IForwardPass.JoinHeads) of per-head column ranges.
extern "C" __global__ void copy_head_columns(const float* __restrict__ src, int srcCols, int srcStride, int srcOffset,
    float* __restrict__ dst, int dstCols, int dstStride, int dstOffset, int heads, int width, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
    {
        int j = (int) (i % width);
        long long rest = i / width;
        int h = (int) (rest % heads);
        long long r = rest / heads;
        dst[r * dstCols + (long long) h * dstStride + dstOffset + j] = src[r * srcCols + (long long) h * srcStride + srcOffset + j];
    }
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

// gpt-oss's clamped SwiGLU (Compute/GatedActivation.cs): g = min(gate, limit), u = clamp(up, −limit, limit),
// gate ← (u + 1)·(g·σ(alpha·g)).
extern "C" __global__ void clamped_swiglu(float* __restrict__ gate, const float* __restrict__ up, float alpha, float limit, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
    {
        float g = fminf(gate[i], limit);
        float u = fminf(fmaxf(up[i], -limit), limit);
        float glu = g * (1.f / (1.f + expf(-(g * alpha))));
        gate[i] = (u + 1.f) * glu;
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

// x ← factor·x (Cohere's logit scale; TensorPrimitives.Multiply on the host).
extern "C" __global__ void scale_in_place(float* __restrict__ x, float factor, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        x[i] *= factor;
}

// x ← tanh(x / cap)·cap (Compute/SoftCap.cs: divided, not multiplied by 1/cap, as transformers does).
extern "C" __global__ void soft_cap(float* __restrict__ x, float cap, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        x[i] = tanhf(x[i] / cap) * cap;
}

// One row (token) of a test output a against a reference b per block of TOKEN_DIFF_THREADS: Σ(a−b)², Σb², Σa², Σab
// and max|a−b| in double (Compute/TokenDiff.cs), written as five doubles at sums[5·row]. A tree reduction in a fixed
// order, so a row's sums are the same on every run; they differ from the host's element-order sums by double
// rounding only. The head's comparison after quantizing sums 128k logits per token here instead of on the host.
#define TOKEN_DIFF_THREADS 256
extern "C" __global__ void __launch_bounds__(TOKEN_DIFF_THREADS) token_diff(const float* __restrict__ a, const float* __restrict__ b, int width,
    double* __restrict__ sums)
{
    __shared__ double partial[4][TOKEN_DIFF_THREADS];
    __shared__ double largest[TOKEN_DIFF_THREADS];
    const long long base = (long long) blockIdx.x * width;
    double dd = 0, bb = 0, aa = 0, ab = 0, maxDiff = 0;
    for (int i = threadIdx.x; i < width; i += TOKEN_DIFF_THREADS)
    {
        double x = a[base + i], y = b[base + i], d = x - y;
        dd += d * d;
        bb += y * y;
        aa += x * x;
        ab += x * y;
        maxDiff = fmax(maxDiff, fabs(d));
    }
    partial[0][threadIdx.x] = dd;
    partial[1][threadIdx.x] = bb;
    partial[2][threadIdx.x] = aa;
    partial[3][threadIdx.x] = ab;
    largest[threadIdx.x] = maxDiff;
    __syncthreads();
    for (int stride = TOKEN_DIFF_THREADS / 2; stride > 0; stride /= 2)
    {
        if (threadIdx.x < stride)
        {
            for (int s = 0; s < 4; s++)
                partial[s][threadIdx.x] += partial[s][threadIdx.x + stride];
            largest[threadIdx.x] = fmax(largest[threadIdx.x], largest[threadIdx.x + stride]);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
    {
        double* out = sums + 5LL * blockIdx.x;
        out[0] = partial[0][0];
        out[1] = partial[1][0];
        out[2] = partial[2][0];
        out[3] = partial[3][0];
        out[4] = largest[0];
    }
}
