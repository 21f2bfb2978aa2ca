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

// w ← w − q: the proxy error's E = T − Q (CudaDenseAlgebra.StripeTraces) in the target's memory, whose trace is taken
// first, so that Q stays for the reconstruction made where it is held (DeviceLinearTarget.Reconstruction).
extern "C" __global__ void subtract_in_place(float* __restrict__ w, const float* __restrict__ q, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        w[i] = w[i] - q[i];
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

// The drift target handed to the quantizer (CudaDenseAlgebra.TryDriftTargetTransposed): t (padded_k × padded_n,
// row-major) = Wᵀ + Dᵀ for W and D = W·Gᵀ (rows × k, row-major), zero past k and rows. Each rounded float sum is the
// host's (TensorPrimitives.Add of D and W), so the target's bytes are the host path's. A 32×32 tile goes through
// shared memory so that both the reads along W's rows and the writes along t's rows are coalesced; 256 threads a block.
#define TARGET_TILE 32
extern "C" __global__ void drift_target_transposed(const float* __restrict__ w, const float* __restrict__ d, int rows, int k,
                                                   float* __restrict__ t, int padded_k, int padded_n)
{
    __shared__ float tile[TARGET_TILE][TARGET_TILE + 1];
    const int tiles_n = (padded_n + TARGET_TILE - 1) / TARGET_TILE, tiles_k = (padded_k + TARGET_TILE - 1) / TARGET_TILE;
    const long long tiles = (long long) tiles_n * tiles_k;
    const int tx = threadIdx.x % TARGET_TILE, ty = threadIdx.x / TARGET_TILE, step = blockDim.x / TARGET_TILE;
    for (long long index = blockIdx.x; index < tiles; index += gridDim.x)
    {
        const int j0 = (int) (index % tiles_n) * TARGET_TILE, i0 = (int) (index / tiles_n) * TARGET_TILE;
        for (int r = ty; r < TARGET_TILE; r += step)
        {
            const int j = j0 + r, i = i0 + tx;
            float v = 0.0f;
            if (j < rows && i < k)
            {
                const long long at = (long long) j * k + i;
                v = __fadd_rn(d[at], w[at]);
            }
            tile[r][tx] = v;
        }
        __syncthreads();
        for (int r = ty; r < TARGET_TILE; r += step)
        {
            const int i = i0 + r, j = j0 + tx;
            if (i < padded_k && j < padded_n)
                t[(long long) i * padded_n + j] = tile[tx][r];
        }
        __syncthreads();
    }
}

// How far the drift moved a linear's target, per row j of W (one block of ROW_DOT_THREADS a row, a fixed reduction
// order): sums[2j] = Σ ((w + d) − w)² with the float sum and difference the host's DriftCorrection.RelativeShift
// reads, sums[2j + 1] = Σ w², both in double. The host adds the rows in order.
extern "C" __global__ void drift_shift_rows(const float* __restrict__ w, const float* __restrict__ d, int k, double* __restrict__ sums)
{
    __shared__ double moved[ROW_DOT_THREADS];
    __shared__ double norm[ROW_DOT_THREADS];
    const long long base = (long long) blockIdx.x * k;
    double m = 0, n = 0;
    for (int i = threadIdx.x; i < k; i += ROW_DOT_THREADS)
    {
        const float wi = w[base + i];
        const double difference = (double) __fsub_rn(__fadd_rn(d[base + i], wi), wi);
        m += difference * difference;
        n += (double) wi * (double) wi;
    }
    moved[threadIdx.x] = m;
    norm[threadIdx.x] = n;
    __syncthreads();
    for (int stride = ROW_DOT_THREADS / 2; stride > 0; stride /= 2)
    {
        if (threadIdx.x < stride)
        {
            moved[threadIdx.x] += moved[threadIdx.x + stride];
            norm[threadIdx.x] += norm[threadIdx.x + stride];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
    {
        sums[2 * (long long) blockIdx.x] = moved[0];
        sums[2 * (long long) blockIdx.x + 1] = norm[0];
    }
}

// A projected group's drift target (CudaDenseAlgebra.TryProjectedDriftTargetInto): t (padded_k × padded_n, row-major)
// = Wᵀ + S for W (rows × k, row-major) and the member's block of its steps S (k × rows at column `offset` of the
// k × columns solve, already in t's layout), zero past k and rows. Each rounded float sum is the host's
// (DriftCorrection.AddSteps: w + step), so the target's bytes are the host path's. W's 32×32 tile goes through shared
// memory (reads along W's rows, writes along t's, both coalesced); the steps are read along t's rows. Per tile it
// writes Σ (t − w)² and Σ w² in double (the difference of the two floats taken in double, as the host does) to
// tile_sums[2·tile], [2·tile + 1], which the host adds in tile order: the log's relative shift, the same whatever the
// grid. 256 threads a block.
extern "C" __global__ void projected_target_transposed(const float* __restrict__ w, int rows, int k, const float* __restrict__ steps, int columns,
                                                       int offset, float* __restrict__ t, int padded_k, int padded_n, double* __restrict__ tile_sums)
{
    __shared__ float tile[TARGET_TILE][TARGET_TILE + 1];
    __shared__ double moved[256];
    __shared__ double norm[256];
    const int tiles_n = (padded_n + TARGET_TILE - 1) / TARGET_TILE, tiles_k = (padded_k + TARGET_TILE - 1) / TARGET_TILE;
    const long long tiles = (long long) tiles_n * tiles_k;
    const int tx = threadIdx.x % TARGET_TILE, ty = threadIdx.x / TARGET_TILE, step = blockDim.x / TARGET_TILE;
    for (long long index = blockIdx.x; index < tiles; index += gridDim.x)
    {
        const int j0 = (int) (index % tiles_n) * TARGET_TILE, i0 = (int) (index / tiles_n) * TARGET_TILE;
        for (int r = ty; r < TARGET_TILE; r += step)
        {
            const int j = j0 + r, i = i0 + tx;
            tile[r][tx] = j < rows && i < k ? w[(long long) j * k + i] : 0.0f;
        }
        __syncthreads();
        double m = 0, n = 0;
        for (int r = ty; r < TARGET_TILE; r += step)
        {
            const int i = i0 + r, j = j0 + tx;
            if (i >= padded_k || j >= padded_n)
                continue;
            const float wi = tile[tx][r];
            float v = wi;
            if (i < k && j < rows)
            {
                v = __fadd_rn(wi, steps[(long long) i * columns + offset + j]);
                const double difference = (double) v - (double) wi;
                m += difference * difference;
                n += (double) wi * (double) wi;
            }
            t[(long long) i * padded_n + j] = v;
        }
        moved[threadIdx.x] = m;
        norm[threadIdx.x] = n;
        __syncthreads();
        for (int stride = blockDim.x / 2; stride > 0; stride /= 2)
        {
            if (threadIdx.x < stride)
            {
                moved[threadIdx.x] += moved[threadIdx.x + stride];
                norm[threadIdx.x] += norm[threadIdx.x + stride];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0)
        {
            tile_sums[2 * index] = moved[0];
            tile_sums[2 * index + 1] = norm[0];
        }
        __syncthreads();
    }
}
