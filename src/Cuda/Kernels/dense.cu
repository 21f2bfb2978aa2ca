// Small element-wise kernels for the dense algebra on the GPU (src/Cuda/Blas).

// dst += src, float into double: per-chunk Gram products summed in float64 (EXL3-FORMAT.md §3.2 sums over all tokens).
extern "C" __global__ void add_float_to_double(const float* __restrict__ src, double* __restrict__ dst, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        dst[i] += (double) src[i];
}
