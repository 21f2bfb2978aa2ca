// Small element-wise kernels for the dense algebra on the GPU (src/Cuda/Blas).

// dst += src, float into double: per-chunk Gram products summed in float64 (docs/exl3-format.md §3.2 sums over all tokens).
extern "C" __global__ void add_float_to_double(const float* __restrict__ src, double* __restrict__ dst, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        dst[i] += (double) src[i];
}

// A symmetric k x k matrix of which SSYRK filled the column-major lower triangle (i >= j at i + j*k): the upper
// entries j + i*k take those values. Rows of 32 x 32 tiles through shared memory keep reads and writes coalesced.
extern "C" __global__ void mirror_lower(double* __restrict__ a, int k)
{
    // One block of 256 threads (32 x 8) per 32 x 32 tile; blockIdx.x = bi * tiles + bj.
    __shared__ double tile[32][33];
    int tiles = (k + 31) / 32;
    int bi = blockIdx.x / tiles, bj = blockIdx.x % tiles;
    if (bj > bi)
        return;
    int tx = threadIdx.x % 32, ty = threadIdx.x / 32;
    // Load the lower tile (rows bi, columns bj): element (i, j) at i + j*k, i = bi*32 + tx.
    for (int r = ty; r < 32; r += 8)
    {
        int i = bi * 32 + tx, j = bj * 32 + r;
        if (i < k && j < k)
            tile[r][tx] = a[(long long) j * k + i];
    }
    __syncthreads();
    // Store its transpose into the upper tile: element (j, i) at j + i*k, only where i > j.
    for (int r = ty; r < 32; r += 8)
    {
        int j = bj * 32 + tx, i = bi * 32 + r;
        if (i < k && j < k && i > j)
            a[(long long) i * k + j] = tile[tx][r];
    }
}

// e = w - q in place of q: the proxy error's E (docs/exl3-format.md §3.7).
extern "C" __global__ void subtract_from(const float* __restrict__ w, float* __restrict__ q, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        q[i] = w[i] - q[i];
}

// rows[r] = sum_i x[r, i] * y[r, i] in double, one block of ROW_DOT_THREADS per row; a fixed reduction order, so a
// row's sum is the same on every run. The host adds the rows in order (QuadraticForms.SumInOrder).
#define ROW_DOT_THREADS 256
extern "C" __global__ void row_dots(const float* __restrict__ x, const float* __restrict__ y, int n, double* __restrict__ rows)
{
    __shared__ double partial[ROW_DOT_THREADS];
    const long long base = (long long) blockIdx.x * n;
    double sum = 0;
    for (int i = threadIdx.x; i < n; i += ROW_DOT_THREADS)
        sum += (double) x[base + i] * (double) y[base + i];
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int stride = ROW_DOT_THREADS / 2; stride > 0; stride /= 2)
    {
        if (threadIdx.x < stride)
            partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        rows[blockIdx.x] = partial[0];
}
