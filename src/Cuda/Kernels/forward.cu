// The element-wise and attention kernels of a decoder block's forward on the GPU (src/Cuda/Models/CudaDecoderForward.cs).
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

// RMSNorm (Compute/RmsNorm.cs, HF LlamaRMSNorm): y[r] = (x[r] · 1/√(mean(x[r]²) + eps)) ⊙ w, one block per row of
// `width`; y may be x (each thread rewrites only what it read, after the reduction).
extern "C" __global__ void rms_norm(const float* x, const float* __restrict__ w, float eps, float* y, int width)
{
    long long base = (long long) blockIdx.x * width;
    float s = 0.f;
    for (int i = threadIdx.x; i < width; i += blockDim.x)
    {
        float v = x[base + i];
        s += v * v;
    }
    s = block_sum(s);
    float inv = 1.f / sqrtf(s / width + eps);
    for (int i = threadIdx.x; i < width; i += blockDim.x)
        y[base + i] = x[base + i] * inv * w[i];
}

// RoPE in the rotate_half form (Compute/Rope.cs) on x (rows·tokens, heads·headDim); token m sits at position
// m mod tokens because every calibration row is its own sequence. One thread per rotated pair.
extern "C" __global__ void rope(float* x, const float* __restrict__ cosTable, const float* __restrict__ sinTable,
    int tokens, int heads, int headDim, long long pairs)
{
    int half = headDim >> 1;
    for (long long p = (long long) blockIdx.x * blockDim.x + threadIdx.x; p < pairs; p += (long long) gridDim.x * blockDim.x)
    {
        int i = (int) (p % half);
        long long headIndex = p / half;
        long long token = headIndex / heads;
        int t = (int) (token % tokens);
        float* head = x + headIndex * headDim;
        float a = head[i], b = head[i + half];
        float c = cosTable[(long long) t * half + i], s = sinTable[(long long) t * half + i];
        head[i] = a * c - b * s;
        head[i + half] = b * c + a * s;
    }
}

// Causal (optionally sliding-window) softmax of attention scores (Compute/CausalAttention.cs): scores holds
// `count` rows of `tokens` keys, row r being query t = r mod tokens of some (sequence, head). Keys
// max(0, t − window + 1) ≤ s ≤ t get softmax(scale · score), the rest 0. One warp per row.
extern "C" __global__ void causal_softmax(float* scores, int tokens, float scale, int window, long long count)
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
        m = fmaxf(m, s[j] * scale);
    m = warp_max(m);
    float sum = 0.f;
    for (int j = first + lane; j <= t; j += 32)
    {
        float e = expf(s[j] * scale - m);
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
