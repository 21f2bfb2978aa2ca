// A linear's regularization on the device (Quantization/DeviceLinearTarget.cs; docs/exl3-format.md §3.3–§3.5) over
// W (k, n) row-major: the sums of squares that its scales and the scale search's tile choice are made from, and the
// element-wise scalings between the Hadamard rotations (hadamard.cu). Each sum is taken in float64 in the order
// src/Regularize/Quantization/LinearRegularizer.cs and ScaleSearch/ScaleTileSampler.cs take it on the host, one thread
// per sum: a float's square is exact in float64, so every addition rounds as the host's does and the results are the
// host's bits. Products and quotients are written with __dmul_rn/__dadd_rn/__fmul_rn/__fdiv_rn so that nothing is
// contracted into a fused multiply-add or computed approximately.

#define TILE 16

// squares[j] = Σ_r w[r, j]² for each column j (rows in order; consecutive threads read consecutive columns of a row).
extern "C" __global__ void column_squares(const float* __restrict__ w, int k, int n, double* __restrict__ squares)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n)
        return;
    double ss = 0.0;
    for (long long r = 0; r < k; r++)
    {
        const double v = (double) w[r * n + j];
        ss = __dadd_rn(ss, __dmul_rn(v, v));
    }
    squares[j] = ss;
}

// squares[r] = Σ_j w[r, j]² for each row r (along the row in order). One thread per row: another order would round
// differently; each thread reads its row's consecutive floats, which the cache serves a sector at a time.
extern "C" __global__ void row_squares(const float* __restrict__ w, int k, int n, double* __restrict__ squares)
{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= k)
        return;
    const float* row = w + (long long) r * n;
    double ss = 0.0;
    for (int j = 0; j < n; j++)
    {
        const double v = (double) row[j];
        ss = __dadd_rn(ss, __dmul_rn(v, v));
    }
    squares[r] = ss;
}

// w[r, j] ·= factors[j] (LinearRegularizer.ScaleColumns); a grid-stride loop over the count values.
extern "C" __global__ void scale_columns(float* w, int n, long long count, const float* __restrict__ factors)
{
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < count; i += (long long) gridDim.x * blockDim.x)
        w[i] = __fmul_rn(w[i], factors[i % n]);
}

// target[r, j] = w[r, j] / su[r] (LinearRegularizer.ApplyInputSide before its rotation); a grid-stride loop.
extern "C" __global__ void divide_rows(const float* __restrict__ w, float* __restrict__ target, int n, long long count, const float* __restrict__ su)
{
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < count; i += (long long) gridDim.x * blockDim.x)
        target[i] = __fdiv_rn(w[i], su[i / n]);
}

// means[tk·tilesN + tn] = the mean square of 16×16 tile (tk, tn) of t (k, n), summed row-major within the tile
// (ScaleTileSampler.MeanSquares); one thread per tile. Dividing by 256 is exact.
extern "C" __global__ void tile_mean_squares(const float* __restrict__ t, int k, int n, double* __restrict__ means)
{
    const int tilesN = n / TILE;
    const long long tile = blockIdx.x * (long long) blockDim.x + threadIdx.x;
    if (tile >= (long long) (k / TILE) * tilesN)
        return;
    const long long tk = tile / tilesN, tn = tile % tilesN;
    double ss = 0.0;
    for (int r = 0; r < TILE; r++)
    {
        const float* row = t + (tk * TILE + r) * n + tn * TILE;
        for (int c = 0; c < TILE; c++)
        {
            const double v = (double) row[c];
            ss = __dadd_rn(ss, __dmul_rn(v, v));
        }
    }
    means[tile] = __ddiv_rn(ss, (double) (TILE * TILE));
}

// tiles[p·256 + r·16 + c] = t[(picks[2p]·16 + r), picks[2p + 1]·16 + c]: the picked tiles, each row-major
// (ScaleTileSampler.CopyTile). One thread per copied value.
extern "C" __global__ void gather_tiles(const float* __restrict__ t, int n, const int* __restrict__ picks, int count, float* __restrict__ tiles)
{
    const long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x;
    if (i >= (long long) count * TILE * TILE)
        return;
    const int p = (int) (i / (TILE * TILE)), e = (int) (i % (TILE * TILE));
    const long long row = (long long) picks[2 * p] * TILE + e / TILE, col = (long long) picks[2 * p + 1] * TILE + e % TILE;
    tiles[i] = t[row * n + col];
}

// The HF weight (out, in) row-major from the rotated Q (k, n) row-major (docs/exl3-format.md §4.3, after both Hadamard
// rotations): hf[o, i] = (q[i, o]·svh[o])·suh[i], the padding rows and columns left out. The two products in the order
// src/Regularize/Reconstruction/LinearReconstruction.ApplyRotationsAndScales takes them, then the transpose of ToHfLayout,
// so the result is the host's to the bit. A 32×32 tile through shared memory keeps both the reads and the writes
// coalesced: one block of 256 threads (32 × 8, each 4 rows of the tile) per tile, the tiles numbered along o first.
#define RECON_TILE 32
extern "C" __global__ void reconstruct_hf(const float* __restrict__ q, int n, const float* __restrict__ suh, const float* __restrict__ svh,
                                          float* __restrict__ hf, int out_features, int in_features)
{
    __shared__ float tile[RECON_TILE][RECON_TILE + 1];
    const int tiles_o = (out_features + RECON_TILE - 1) / RECON_TILE;
    const int o0 = (blockIdx.x % tiles_o) * RECON_TILE, i0 = (blockIdx.x / tiles_o) * RECON_TILE;
    const int tx = threadIdx.x % RECON_TILE, ty = threadIdx.x / RECON_TILE, rows = blockDim.x / RECON_TILE;
    for (int r = ty; r < RECON_TILE; r += rows)
    {
        const int i = i0 + r, o = o0 + tx;
        if (i < in_features && o < out_features)
            tile[r][tx] = __fmul_rn(__fmul_rn(q[(long long) i * n + o], svh[o]), suh[i]);
    }
    __syncthreads();
    for (int r = ty; r < RECON_TILE; r += rows)
    {
        const int o = o0 + r, i = i0 + tx;
        if (o < out_features && i < in_features)
            hf[(long long) o * in_features + i] = tile[tx][r];
    }
}
