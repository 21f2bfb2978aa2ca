// The element-wise steps of LDLQ's block loop on the GPU (docs/exl3-format.md §3.7; driven by
// src/Cuda/Quantization/CudaLdlqSolver.cs). The feedback products are cuBLAS SGEMMs and the search is viterbi.cu;
// these kernels move one 16-row block between the row-major matrix and the tiles in trellis-position order (§2.5).
// Matrices reach k·n = 4096 × 128256 values (a head), so flat indices are 64-bit.

typedef unsigned short u16;

#define SIDE 16
#define LENGTH 256

// Row-major tile index r·16 + c of trellis position t (§2.5, exllamav3's tensor_core_perm; TileLayout.IndexOfPosition):
// lane = t / 8, j = t % 8, r = 2·(lane % 4) + {0, 1, 8, 9}[j % 4], c = lane / 4 + 8·(j / 4).
__device__ __forceinline__ int index_of_position(int t)
{
    const int lane = t >> 3, j = t & 7;
    const int r = ((lane & 3) << 1) + (j & 1) + ((j & 2) << 2);
    const int c = (lane >> 2) + ((j >> 2) << 3);
    return r * SIDE + c;
}

// Offset, in a row-major block of 16 rows and n columns, of value t (position order) of column tile tile.
__device__ __forceinline__ long long block_offset(long long tile, int t, int n)
{
    const int index = index_of_position(t);
    return (long long) (index / SIDE) * n + tile * SIDE + index % SIDE;
}

// target = wr + span_feedback over one block of count values: the block's target before the in-span product (§3.7).
extern "C" __global__ void ldlq_block_target(const float* __restrict__ wr, const float* __restrict__ span_feedback,
                                             float* __restrict__ target, long long count)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (long long) gridDim.x * blockDim.x)
        target[i] = wr[i] + span_feedback[i];
}

// tiles[tile·256 + t] = target[tile (row-major 16×n block)][index_of_position(t)]: the block's n/16 tiles gathered
// into position order for the search (ScaleTileSampler.CopyTile then TileLayout.ToPositionOrder).
extern "C" __global__ void ldlq_gather_tiles(const float* __restrict__ target, int n, float* __restrict__ tiles)
{
    const long long count = (long long) SIDE * n;
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (long long) gridDim.x * blockDim.x)
        tiles[i] = target[block_offset(i / LENGTH, (int) (i % LENGTH), n)];
}

// rows[..] -= table[states[..]] over one block: rows hold Wr on entry and E = Wr − Q on exit (one float subtraction,
// as the host's TensorPrimitives.Subtract). states are the block's tiles in position order.
extern "C" __global__ void ldlq_error_rows(const u16* __restrict__ states, const float* __restrict__ table, int n,
                                           float* __restrict__ rows)
{
    const long long count = (long long) SIDE * n;
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (long long) gridDim.x * blockDim.x)
    {
        const long long o = block_offset(i / LENGTH, (int) (i % LENGTH), n);
        rows[o] = rows[o] - table[states[i]];
    }
}

// quantized (k, n) row-major = table[states], states tile-major [k/16][n/16][256] in position order: Q of the whole
// matrix from the states alone, so Q needs no buffer of its own during the loop.
extern "C" __global__ void ldlq_decode(const u16* __restrict__ states, const float* __restrict__ table, int n,
                                       long long count, float* __restrict__ quantized)
{
    const long long per_block = (long long) SIDE * n;
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (long long) gridDim.x * blockDim.x)
    {
        const long long row_block = i / per_block, within = i % per_block;
        quantized[row_block * per_block + block_offset(within / LENGTH, (int) (within % LENGTH), n)] = table[states[i]];
    }
}

// Not NaN or ±Inf (all exponent bits set); written out because NVRTC compiles without the math headers' isfinite.
__device__ __forceinline__ bool finite(double x)
{
    return (__double_as_longlong(x) & 0x7ff0000000000000LL) != 0x7ff0000000000000LL;
}

// The block LDL of §3.6 on the device (CudaLdlqSolver.Factor): the float Hessian widened to double with attempt·2σ·
// mean(diag) added to the diagonal, as BlockLdl.Decompose damps a retry; cuSOLVER's Dpotrf then factors it.
extern "C" __global__ void ldl_damped_copy(const float* __restrict__ h, double* __restrict__ a, int k, double add)
{
    const long long count = (long long) k * k;
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (long long) gridDim.x * blockDim.x)
        a[i] = (double) h[i] + (i % (k + 1) == 0 ? add : 0.0);  // i < k², so i = r·(k+1) is exactly (r, r)
}

// L_u = L·blockdiag(L_bb)⁻¹ with the diagonal blocks then zero (BlockLdl.StrictBlockFactor, §3.6), one thread block
// per 16-column block b. l is row-major with L in its lower triangle (its strict upper triangle is not read); factor
// must be zero beforehand and receives only the rows below each diagonal block, as float. *bad is set when any value of
// L's lower triangle or of an inverse is NaN or ±Inf (the host then treats the Cholesky as failed).
extern "C" __global__ void ldl_strict_block_factor(const double* __restrict__ l, int k, float* __restrict__ factor, int* bad)
{
    __shared__ double block[SIDE * SIDE];
    __shared__ double inverse[SIDE * SIDE];
    const int b = blockIdx.x * SIDE;
    for (int i = threadIdx.x; i < SIDE * SIDE; i += blockDim.x)
    {
        const int r = i / SIDE, c = i % SIDE;
        block[i] = c <= r ? l[(long long) (b + r) * k + b + c] : 0.0;
        if (c <= r && !finite(block[i]))
            *bad = 1;
    }
    __syncthreads();
    // Column j of the inverse of the lower-triangular block depends only on column j: forward substitution per thread,
    // in BlockLdl.LowerInverse's order.
    if (threadIdx.x < SIDE)
    {
        const int j = threadIdx.x;
        for (int i = 0; i < j; i++)
            inverse[i * SIDE + j] = 0.0;
        inverse[j * SIDE + j] = 1.0 / block[j * SIDE + j];
        for (int i = j + 1; i < SIDE; i++)
        {
            double sum = 0.0;
            for (int t = j; t < i; t++)
                sum += block[i * SIDE + t] * inverse[t * SIDE + j];
            inverse[i * SIDE + j] = -sum / block[i * SIDE + i];
        }
        for (int i = 0; i < SIDE; i++)
        {
            if (!finite(inverse[i * SIDE + j]))
                *bad = 1;
        }
    }
    __syncthreads();
    for (int i = b + SIDE + threadIdx.x; i < k; i += blockDim.x)
    {
        double v[SIDE];
        for (int t = 0; t < SIDE; t++)
        {
            v[t] = l[(long long) i * k + b + t];
            if (!finite(v[t]))
                *bad = 1;
        }
        for (int j = 0; j < SIDE; j++)
        {
            // (L_ib · L_bb⁻¹)_j = Σ_{t ≥ j} L_ib[t] · inv[t, j] in ascending t, as the host sums it.
            double sum = 0.0;
            for (int t = j; t < SIDE; t++)
                sum += v[t] * inverse[t * SIDE + j];
            factor[(long long) i * k + b + j] = (float) sum;
        }
    }
}
