// Small element-wise kernels for the dense algebra on the GPU (src/Cuda/Blas).

// One column stripe of a Gram sum's float product into its float64 sum: src is column-major height x width (height =
// k - c0, leading dimension height), its element (r, c) belonging to the sum's (c0 + r, c0 + c) at (c0 + r) + (c0 + c)*k.
// Only the lower triangle (r >= c) is added: SSYRK leaves the diagonal block's upper part unwritten.
extern "C" __global__ void add_lower_stripe(const float* __restrict__ src, int height, int width, double* __restrict__ sum, int k, int c0)
{
    long long n = (long long) height * width;
    for (long long e = (long long) blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (long long) gridDim.x * blockDim.x)
    {
        int r = (int) (e % height), c = (int) (e / height);
        if (r >= c)
            sum[(long long) (c0 + c) * k + c0 + r] += (double) src[e];
    }
}

// A stripe of a cross sum (IDenseAlgebra.CreateCrossAccumulator): the column-major k x width float product of columns
// [c0, c0 + width) added to the float64 sum, whole (the product is not symmetric).
extern "C" __global__ void add_stripe(const float* __restrict__ src, int width, double* __restrict__ sum, int k, int c0)
{
    long long n = (long long) k * width;
    for (long long e = (long long) blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (long long) gridDim.x * blockDim.x)
        sum[(long long) c0 * k + e] += (double) src[e];
}

// A finalized Hessian's mean (IGramAccumulator.Mean): (float)(sum / count), divided in double and rounded once as the
// host does (IEEE division and round-to-nearest conversion, so the two agree to the bit), in the top-left k x k of a
// padded x padded row-major array, zeros elsewhere; and the diagonal of sum / count in double. sum is symmetric.
extern "C" __global__ void gram_mean(const double* __restrict__ sum, int k, double count, float* __restrict__ mean, int padded, double* __restrict__ diagonal)
{
    long long n = (long long) padded * padded;
    for (long long e = (long long) blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (long long) gridDim.x * blockDim.x)
    {
        int i = (int) (e / padded), j = (int) (e % padded);
        float v = 0.0f;
        if (i < k && j < k)
        {
            double d = __ddiv_rn(sum[(long long) i * k + j], count);
            v = __double2float_rn(d);
            if (i == j)
                diagonal[i] = d;
        }
        mean[e] = v;
    }
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
// flag[0] = 1 when any of x's n values is non-zero (the drift target's streams differed); flag starts at 0.
extern "C" __global__ void flag_nonzero(const float* __restrict__ x, long long n, float* __restrict__ flag)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
    {
        if (x[i] != 0.0f)
        {
            flag[0] = 1.0f;
            return;
        }
    }
}

extern "C" __global__ void subtract_from(const float* __restrict__ w, float* __restrict__ q, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        q[i] = w[i] - q[i];
}

// The drift target's solve (CudaDenseAlgebra.TrySolveCross): the top-left k×k of a padded float Hessian widened to
// double, and the solution narrowed back to float.
extern "C" __global__ void widen_top_left(const float* __restrict__ h, int padded, double* __restrict__ a, int k)
{
    const long long count = (long long) k * k;
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (long long) gridDim.x * blockDim.x)
        a[i] = (double) h[(i / k) * padded + i % k];
}

extern "C" __global__ void narrow(const double* __restrict__ x, float* __restrict__ y, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        y[i] = (float) x[i];
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

// m[i, i] += value for i < k, one rounded float addition each: the damping GroupHessian.Finalize adds on the host
// (h[i·k + i] += (float)(σ·mean diag)), applied to a mean left on the device (CudaResidentMatrix).
extern "C" __global__ void add_to_diagonal(float* m, int k, float value)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < k; i += gridDim.x * blockDim.x)
    {
        const long long at = (long long) i * (k + 1);
        m[at] = __fadd_rn(m[at], value);
    }
}
