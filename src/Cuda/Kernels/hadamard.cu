// The block-diagonal Hadamard rotation of docs/exl3-format.md §4.4 on the device (Quantization/DeviceHadamard.cs):
// H128/√128 down the columns (Had·M) or along the rows (M·Had) of a row-major matrix, with the butterflies of
// src/Regularize/Hadamard/HadamardTransform.cs in its order and then one multiply by 1/√128, so that every element
// sees the host's operations and the result is the host's to the bit. The arithmetic is written with __fadd_rn,
// __fsub_rn and __fmul_rn, which the compiler never contracts into fused multiply-adds (a fused (h·s)·s + b would
// round once where the host rounds twice).

#define HADAMARD 128
// Lines (columns of hadamard_columns, rows of hadamard_rows) per thread block: a 128 × 32 float tile is 16.5 KB of
// shared memory with its padding column.
#define LINES 32

// The seven butterfly stages over the tile's 128 positions of each of its 32 lines, in HadamardTransform's order:
// stage h pairs j and j + h within runs of 2h. Every pair of a stage is independent; stages are separated by barriers.
__device__ __forceinline__ void butterflies(float (*tile)[LINES + 1])
{
    for (int h = 1; h < HADAMARD; h <<= 1)
    {
        for (int e = threadIdx.x; e < (HADAMARD / 2) * LINES; e += blockDim.x)
        {
            const int line = e % LINES, pair = e / LINES;
            const int j = (pair / h) * 2 * h + pair % h;
            const float a = tile[j][line], b = tile[j + h][line];
            tile[j][line] = __fadd_rn(a, b);
            tile[j + h][line] = __fsub_rn(a, b);
        }
        __syncthreads();
    }
}

// m (rows, cols) ← Had·m, every column rotated in 128-row blocks (HadamardTransform.LeftMultiply); rows is a multiple
// of 128. With scales (else 0) each value is first scaled as GroupHessian.InQuantizedBasis does, (m[i,j]·s[j])·s[i],
// scales of length max(rows, cols). One thread block per 128-row block and 32-column group: blockIdx.x = group·(rows/128) + block.
extern "C" __global__ void hadamard_columns(float* m, int rows, int cols, const float* __restrict__ scales, float scale)
{
    __shared__ float tile[HADAMARD][LINES + 1];
    const int blocks = rows / HADAMARD;
    const long long r0 = (long long) (blockIdx.x % blocks) * HADAMARD;
    const int c0 = (blockIdx.x / blocks) * LINES;
    // Consecutive threads take consecutive columns of a row: each warp reads 32 adjacent floats.
    for (int e = threadIdx.x; e < HADAMARD * LINES; e += blockDim.x)
    {
        const int t = e / LINES, line = e % LINES, col = c0 + line;
        float v = 0.0f;
        if (col < cols)
        {
            v = m[(r0 + t) * cols + col];
            if (scales != 0)
                v = __fmul_rn(__fmul_rn(v, scales[col]), scales[r0 + t]);
        }
        tile[t][line] = v;
    }
    __syncthreads();
    butterflies(tile);
    for (int e = threadIdx.x; e < HADAMARD * LINES; e += blockDim.x)
    {
        const int t = e / LINES, line = e % LINES, col = c0 + line;
        if (col < cols)
            m[(r0 + t) * cols + col] = __fmul_rn(tile[t][line], scale);
    }
}

// m (rows, cols) ← m·Had, every row rotated in 128-column blocks (HadamardTransform.RightMultiply); cols is a multiple
// of 128. One thread block per 32-row group and 128-column block: blockIdx.x = group·(cols/128) + block.
extern "C" __global__ void hadamard_rows(float* m, int rows, int cols, float scale)
{
    __shared__ float tile[HADAMARD][LINES + 1];
    const int blocks = cols / HADAMARD;
    const int c0 = (blockIdx.x % blocks) * HADAMARD;
    const long long r0 = (long long) (blockIdx.x / blocks) * LINES;
    // Consecutive threads take consecutive columns of one row's block: each warp reads 32 adjacent floats.
    for (int e = threadIdx.x; e < HADAMARD * LINES; e += blockDim.x)
    {
        const int t = e % HADAMARD, line = e / HADAMARD;
        tile[t][line] = r0 + line < rows ? m[(r0 + line) * cols + c0 + t] : 0.0f;
    }
    __syncthreads();
    butterflies(tile);
    for (int e = threadIdx.x; e < HADAMARD * LINES; e += blockDim.x)
    {
        const int t = e % HADAMARD, line = e / HADAMARD;
        if (r0 + line < rows)
            m[(r0 + line) * cols + c0 + t] = __fmul_rn(tile[t][line], scale);
    }
}

// diagonal[i] = m[i, i] of a row-major k×k matrix: what BlockLdl.MeanDiagonal sums on the host, in its order.
extern "C" __global__ void copy_diagonal(const float* __restrict__ m, int k, float* __restrict__ diagonal)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < k; i += gridDim.x * blockDim.x)
        diagonal[i] = m[(long long) i * (k + 1)];
}
