// Just enough of CUDA to run src/Cuda/Kernels/attention.cu on the CPU: one host thread per CUDA thread of a block,
// __syncthreads as a barrier of the block's threads, a shuffle as a write to a block-wide exchange array between two
// barriers (the kernel shuffles uniformly, every thread at the same step), __shared__ arrays as function statics
// (shared by the block's threads; blocks run one after another).
#include <barrier>
#include <cstring>
#include <math.h>

struct dim3 { unsigned int x = 0, y = 0, z = 0; };
inline thread_local dim3 threadIdx;
inline dim3 blockIdx, gridDim, blockDim;
inline std::barrier<>* blockBarrier;
inline float exchange[1024];

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict
#define __launch_bounds__(threads)

inline void __syncthreads() { blockBarrier->arrive_and_wait(); }

inline float __shfl_xor_sync(unsigned int, float v, int laneMask)
{
    int t = (int) threadIdx.x;
    exchange[t] = v;
    blockBarrier->arrive_and_wait();
    float other = exchange[t ^ laneMask];
    blockBarrier->arrive_and_wait();
    return other;
}

inline float __int_as_float(unsigned int bits)
{
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

struct alignas(16) float4 { float x, y, z, w; };
inline float4 make_float4(float x, float y, float z, float w) { return float4{ x, y, z, w }; }
