// Tail-biting Viterbi search over the 16-bit trellis (docs/exl3-format.md §2.3-§2.4),
// compiled by NVRTC once per K with -DTRELLIS_K=K -DTRELLIS_TILES=T. No headers: fp16 arithmetic is written as
// PTX f16x2 instructions on 32-bit registers, each holding the costs of two to-nodes.
//
// Design (see docs/gpu-notes.md for the numbers behind it):
// * One block of 512 threads searches TILES tiles side by side; a block is persistent and walks the tiles.
// * The 65536 codebook values are fixed per thread for the whole search, so each thread keeps its 128 of them in
//   64 registers (f16x2) instead of decoding or loading them at every position.
// * The forward DP keeps only the minimum (no argmin): per candidate one sub, one fma and one min, all f16x2.
//   Each position's costs go to a history buffer in global memory; the backtrack recomputes the 2^K candidates of
//   the one node it follows with the same instructions, so it finds the same winner (ties: smallest j).
// * Costs are fp16 like exllamav3's kernel, but renormalized every second position by subtracting the block
//   minimum, so the values that decide the path stay near zero where fp16 is fine-grained.
// * The codebook pairs are read as whole 32-bit words through volatile loads. Assembled from two u16 loads, ptxas
//   kept the halves in separate registers and re-packed them (PRMT) at every use: twice the registers, the codebook
//   spilled inside the DP loop, and 2.4x the ideal instruction count (ncu, H200, K = 4: 157k -> 275k tiles/s).
// * Two tiles per block step behind split barriers (one mbarrier per tile): a warp that has finished tile 0's step
//   goes on to tile 1's instead of waiting for the slowest warp at a block barrier.
// * A butterfly is the 2^K from-nodes (j << FS) | p that feed the 2^K to-nodes (p << K) | q. For K <= 3 a
//   register pair holds butterflies p and p+1 at the same q, so the two from-node costs it needs are adjacent
//   halves and load as one word; for K >= 4 a pair is two adjacent q of one butterfly and the from-node cost is
//   stored twice (both halves) so it also loads as one word.

typedef unsigned short u16;
typedef unsigned int u32;

#define K TRELLIS_K
#define TILES TRELLIS_TILES
#define NT 512

constexpr int NODES = 1 << (16 - K);
constexpr int FANIN = 1 << K;
constexpr int FS = 16 - 2 * K;
constexpr bool WIDE = K <= 3;
constexpr int J = K <= 4 ? FANIN : 16;          // candidates a thread visits per pair
constexpr int S = FANIN / J;                     // threads sharing one group of pairs (j split), K >= 5
constexpr int PAIRS = K <= 4 ? 64 / FANIN : 4;   // f16x2 cost pairs per thread and tile
constexpr int NB = WIDE ? 2 * PAIRS / FANIN : 1; // butterflies per thread (WIDE)
constexpr int LENGTH = 256;
constexpr u32 INF2 = 0x7C007C00u;
constexpr int NORMALIZE_EVERY = 2;
// Targets are clamped so a squared error stays finite in fp16 between renormalizations (|c| <= ~4).
constexpr float CLAMP = 64.0f;

__device__ __forceinline__ u32 hsub2(u32 a, u32 b) { u32 r; asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b)); return r; }
__device__ __forceinline__ u32 hfma2(u32 a, u32 b, u32 c) { u32 r; asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c)); return r; }
__device__ __forceinline__ u32 hmin2(u32 a, u32 b) { u32 r; asm("min.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b)); return r; }
__device__ __forceinline__ u32 dup_lo(u32 a) { return __byte_perm(a, 0, 0x1010); }
__device__ __forceinline__ u32 dup_hi(u32 a) { return __byte_perm(a, 0, 0x3232); }
__device__ __forceinline__ u32 half2_of(float x)
{
    x = fminf(fmaxf(x, -CLAMP), CLAMP);
    u32 r;
    asm("{ .reg .b16 h; cvt.rn.f16.f32 h, %1; mov.b32 %0, {h, h}; }" : "=r"(r) : "f"(x));
    return r;
}

// Shared memory per tile: the targets (duplicated halves), two cost buffers, the per-warp minima.
constexpr int COST_WORDS = WIDE ? NODES / 2 : NODES; // u32 words per cost buffer
struct TileShared
{
    u32 w2[LENGTH];
    u32 cost[2][COST_WORDS];
    u32 warp_min[NT / 32];
};
struct BlockShared
{
    unsigned long long bars[2]; // per-tile step barriers (mbarrier objects), used when TILES == 2
    TileShared tile[TILES];
    u32 reduce[NT / 32];
    u32 node[TILES];
};

// The cost of node i in a buffer, as a u16 (both layouts).
__device__ __forceinline__ u32 cost_of(const u32* buffer, int i)
{
    if constexpr (WIDE) return reinterpret_cast<const u16*>(buffer)[i];
    return buffer[i] & 0xFFFFu;
}

__device__ __forceinline__ void fill_costs(u32* buffer, u32 value2, int tid)
{
    for (int i = tid; i < COST_WORDS; i += NT) buffer[i] = value2;
}

__device__ __forceinline__ void set_cost(u32* buffer, int node, u32 value)
{
    if constexpr (WIDE) reinterpret_cast<u16*>(buffer)[node] = (u16) value;
    else buffer[node] = value | (value << 16);
}

// With two tiles a step of tile tl waits (mbarrier phase parity) until every warp has finished tile tl's previous
// step, and each warp arrives once (after __syncwarp) when it has finished its own part. With one tile (K = 1) a
// block barrier follows each step instead.
constexpr bool SPLIT = TILES > 1;
__device__ __forceinline__ u32 shared_address(const void* p) { return (u32) __cvta_generic_to_shared(p); }
__device__ __forceinline__ void barrier_init(unsigned long long* bar, u32 count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(shared_address(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void barrier_arrive(unsigned long long* bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(shared_address(bar)) : "memory");
}
__device__ __forceinline__ void barrier_wait(unsigned long long* bar, u32 parity)
{
    u32 done;
    do
    {
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(done) : "r"(shared_address(bar)), "r"(parity) : "memory");
    } while (!done);
}

// One DP step for all tiles: costs of every to-node at position t from the previous position's costs.
// 'normalize' subtracts the block minimum of the previous costs; 'track' leaves each warp's minimum of the new
// costs for the next normalization. The new costs go to shared 'next' and, when history is non-null, to history.
// 'step' counts this block's steps so far (the barrier phase).
__device__ __forceinline__ void dp_step(BlockShared& sh, const u32 (&c)[64], int t, int from, int tid,
                                        bool normalize, bool track, u16* history0, u16* history1, u32 step)
{
    const int g = tid / S, s = tid % S;
    const int o0 = g * 2 * PAIRS; // non-WIDE: first of this thread's 8 to-nodes
    const int p0 = o0 >> K;
    // One tile at a time: unrolling over tiles doubled the live registers next to the 64 codebook registers.
    #pragma unroll 1
    for (int tl = 0; tl < TILES; tl++)
    {
        TileShared& ts = sh.tile[tl];
        if (SPLIT && step > 0) barrier_wait(&sh.bars[tl], (step - 1) & 1);
        const u32 w2 = ts.w2[t];
        const u32* prev = ts.cost[from];
        u32* next = ts.cost[from ^ 1];
        u16* history = tl == 0 ? history0 : history1;
        (void) history1;
        u32 r2 = 0;
        if (normalize)
        {
            u32 r = INF2;
            #pragma unroll
            for (int i = 0; i < NT / 32; i++) r = hmin2(r, ts.warp_min[i]);
            r2 = dup_lo(hmin2(r, dup_hi(r)));
        }
        u32 m[PAIRS];
        #pragma unroll
        for (int i = 0; i < PAIRS; i++) m[i] = INF2;

        if constexpr (WIDE)
        {
            // m[i * FANIN + q] holds to-nodes (2b << K | q, (2b + 1) << K | q) of butterfly pair b = tid + NT * i;
            // their from-nodes at candidate j are the adjacent halves of word (j << (FS - 1)) + b.
            #pragma unroll
            for (int j = 0; j < FANIN; j++)
            {
                #pragma unroll
                for (int i = 0; i < NB / 2; i++)
                {
                    const u32 pv2 = prev[(j << (FS - 1)) + tid + NT * i];
                    #pragma unroll
                    for (int q = 0; q < FANIN; q++)
                    {
                        const u32 d = hsub2(c[(i * FANIN + q) * FANIN + j], w2);
                        m[i * FANIN + q] = hmin2(m[i * FANIN + q], hfma2(d, d, pv2));
                    }
                }
            }
        }
        else
        {
            // m[pp] holds to-nodes (o0 + 2pp, o0 + 2pp + 1), all in butterfly p0; this thread visits j = s*J .. s*J+J-1.
            #pragma unroll
            for (int jj = 0; jj < J; jj++)
            {
                const int j = s * J + jj;
                const u32 pv2 = prev[p0 + (j << FS)]; // a base plus immediate offsets
                #pragma unroll
                for (int pp = 0; pp < PAIRS; pp++)
                {
                    const u32 d = hsub2(c[pp * J + jj], w2);
                    m[pp] = hmin2(m[pp], hfma2(d, d, pv2));
                }
            }
            #pragma unroll
            for (int off = S / 2; off >= 1; off >>= 1)
            {
                #pragma unroll
                for (int pp = 0; pp < PAIRS; pp++) m[pp] = hmin2(m[pp], __shfl_xor_sync(0xFFFFFFFFu, m[pp], off));
            }
        }

        if (normalize)
        {
            #pragma unroll
            for (int i = 0; i < PAIRS; i++) m[i] = hsub2(m[i], r2);
        }
        if (track)
        {
            u32 lm = INF2;
            #pragma unroll
            for (int i = 0; i < PAIRS; i++) lm = hmin2(lm, m[i]);
            lm = hmin2(lm, dup_hi(lm)) & 0xFFFFu;
            lm = __reduce_min_sync(0xFFFFFFFFu, lm);
            if ((tid & 31) == 0) ts.warp_min[tid >> 5] = lm | (lm << 16);
        }

        if constexpr (WIDE)
        {
            // Back to node order: butterfly 2b takes the low halves, 2b + 1 the high halves, FANIN words from word b * FANIN.
            #pragma unroll
            for (int i = 0; i < NB / 2; i++)
            {
                u32 out[FANIN];
                #pragma unroll
                for (int q = 0; q < FANIN; q += 2)
                {
                    const u32 a = m[i * FANIN + q], b = m[i * FANIN + q + 1];
                    out[q / 2] = __byte_perm(a, b, 0x5410);
                    out[FANIN / 2 + q / 2] = __byte_perm(a, b, 0x7632);
                }
                const int word = (tid + NT * i) * FANIN;
                u32* h = history != nullptr ? reinterpret_cast<u32*>(history + t * NODES) + word : nullptr;
                if (FANIN == 2)
                {
                    *reinterpret_cast<uint2*>(next + word) = make_uint2(out[0], out[1]);
                    if (h != nullptr) *reinterpret_cast<uint2*>(h) = make_uint2(out[0], out[1]);
                }
                else
                {
                    #pragma unroll
                    for (int k4 = 0; k4 < FANIN; k4 += 4)
                    {
                        const uint4 v4 = make_uint4(out[k4], out[k4 + 1], out[k4 + 2], out[k4 + 3]);
                        reinterpret_cast<uint4*>(next + word)[k4 / 4] = v4;
                        if (h != nullptr) reinterpret_cast<uint4*>(h)[k4 / 4] = v4;
                    }
                }
            }
        }
        else if (s == 0)
        {
            uint4* dst = reinterpret_cast<uint4*>(next + o0);
            dst[0] = make_uint4(dup_lo(m[0]), dup_hi(m[0]), dup_lo(m[1]), dup_hi(m[1]));
            dst[1] = make_uint4(dup_lo(m[2]), dup_hi(m[2]), dup_lo(m[3]), dup_hi(m[3]));
            if (history != nullptr)
                *reinterpret_cast<uint4*>(history + t * NODES + o0) = make_uint4(m[0], m[1], m[2], m[3]);
        }
        if (SPLIT)
        {
            __syncwarp();
            if ((tid & 31) == 0) barrier_arrive(&sh.bars[tl]);
        }
    }
}

// The to-node with the least cost in buffer 'from' for each tile (ties: smallest node), into sh.node.
__device__ __noinline__ void argmin_nodes(BlockShared& sh, int from, int tid)
{
    for (int tl = 0; tl < TILES; tl++)
    {
        u32 best = 0xFFFFFFFFu;
        for (int i = tid; i < NODES; i += NT) best = min(best, (cost_of(sh.tile[tl].cost[from], i) << 16) | (u32) i);
        best = __reduce_min_sync(0xFFFFFFFFu, best);
        if ((tid & 31) == 0) sh.reduce[tid >> 5] = best;
        __syncthreads();
        if (tid < 32)
        {
            u32 v = tid < NT / 32 ? sh.reduce[tid] : 0xFFFFFFFFu;
            v = __reduce_min_sync(0xFFFFFFFFu, v);
            if (tid == 0) sh.node[tl] = v & 0xFFFFu;
        }
        __syncthreads();
    }
}

// The history rows the backtrack reads were written hundreds of positions earlier and have left L2, and each
// step's load depends on the last step's winner. So each step prefetches to L2 what the step AHEAD - 1 further down
// the path may read: from 'node' at position t the from-nodes read at step t - a lie in row t - a - 1 and keep the
// low bits node >> ((a + 1)K), so they are 2^((a + 1)K) candidates, or the whole row once (a + 1)K >= 16 - K.
// Measured against none (H200, lab harness): K = 3 +3%, K = 4 +5%, K = 5 +6%, K = 6 +8%; K = 2 (256 scattered
// prefetches a step) -17%, K = 8 (a 512-byte row) -2%. So K = 3..7 only.
constexpr bool PREFETCH = K >= 3 && K <= 7;
constexpr int AHEAD = K >= 4 ? 8 : 2;
constexpr int AHEAD_BITS = AHEAD * K < 16 - K ? AHEAD * K : 16 - K; // capped: the whole row
__device__ __forceinline__ void prefetch_history(const u16* history, u32 node, int t, int first, int lane)
{
    const int ta = t - (AHEAD - 1);
    if (!PREFETCH || ta < first) return;
    const u16* row = history + ((ta + LENGTH - 1) % LENGTH) * NODES;
    if constexpr (AHEAD_BITS == 16 - K)
    {
        for (int i = lane * 64; i < NODES; i += 32 * 64) asm volatile("prefetch.global.L2 [%0];" :: "l"(row + i));
    }
    else
    {
        const u32 low = node >> AHEAD_BITS;
        for (int x = lane; x < (1 << AHEAD_BITS); x += 32)
            asm volatile("prefetch.global.L2 [%0];" :: "l"(row + (((u32) x << (16 - K - AHEAD_BITS)) | low)));
    }
}

// Follows one tile's path back from 'node' at position 'last' to position 'first' (one warp, lanes split the
// candidates). The cost of candidate j is recomputed exactly as dp_step did from the stored previous costs.
// Returns the from-node of position 'first'; writes the states when 'states' is non-null.
__device__ __noinline__ u32 backtrack(const u16* __restrict__ history, const u16* __restrict__ table, const u32* w2, u32 node,
                         int last, int first, u32 boundary, u16* states, int lane)
{
    for (int t = last; t >= first; t--)
    {
        prefetch_history(history, node, t, first, lane);
        const int tp = (t + LENGTH - 1) % LENGTH;
        const u16* prev = history + tp * NODES;
        u32 best = 0xFFFFFFFFu;
        for (int j = lane; j < FANIN; j += 32)
        {
            const u32 from = ((u32) j << FS) | (node >> K);
            const u32 state = ((u32) j << (16 - K)) | node;
            u32 pv;
            if (states != nullptr && t == 0) pv = from == boundary ? 0u : 0x7C00u; // pass 2 starts from N* alone
            else pv = prev[from];
            const u32 cv = table[state];
            const u32 d = hsub2(cv | (cv << 16), w2[t]);
            const u32 v = hfma2(d, d, pv | (pv << 16)) & 0xFFFFu;
            best = min(best, (v << 16) | (u32) j);
        }
        best = __reduce_min_sync(0xFFFFFFFFu, best);
        const u32 state = ((best & 0xFFFFu) << (16 - K)) | node;
        if (states != nullptr && lane == 0) states[t] = (u16) state;
        node = state >> K;
    }
    return node;
}

// targets: tiles x 256 floats in trellis-position order (§2.5). table: the 65536 codebook values as fp16 bits.
// states: tiles x 256 output. history: gridDim.x * TILES * 256 * NODES halves of scratch.
extern "C" __global__ void __launch_bounds__(NT, 1)
viterbi_tiles(const float* __restrict__ targets, int tiles, const u16* __restrict__ table,
              u16* __restrict__ states, u16* __restrict__ history)
{
    extern __shared__ __align__(16) unsigned char shared_bytes[];
    BlockShared& sh = *reinterpret_cast<BlockShared*>(shared_bytes);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

    // This thread's codebook values, fixed for the whole search (see the layout notes above), each pair read as one
    // word through a volatile load. At K <= 3 the two halves of a pair are not adjacent in the table, so each thread
    // packs them in a shared word of its own and reads that back.
    u32 c[64];
    {
        const int g = tid / S, s = tid % S;
        const int o0 = g * 2 * PAIRS;
        if constexpr (WIDE)
        {
            volatile u32* slot = sh.tile[0].cost[0] + tid;
            #pragma unroll
            for (int i = 0; i < NB / 2; i++)
                #pragma unroll
                for (int q = 0; q < FANIN; q++)
                    #pragma unroll
                    for (int j = 0; j < FANIN; j++)
                    {
                        const int p = 2 * (tid + NT * i);
                        const u32 lo = table[(j << (16 - K)) | (p << K) | q];
                        const u32 hi = table[(j << (16 - K)) | ((p + 1) << K) | q];
                        *slot = lo | (hi << 16);
                        c[(i * FANIN + q) * FANIN + j] = *slot;
                    }
        }
        else
        {
            const volatile u32* pairs = reinterpret_cast<const volatile u32*>(table);
            #pragma unroll
            for (int pp = 0; pp < PAIRS; pp++)
                #pragma unroll
                for (int jj = 0; jj < J; jj++)
                    c[pp * J + jj] = pairs[(((s * J + jj) << (16 - K)) | (o0 + 2 * pp)) >> 1];
        }
    }
    if (SPLIT && tid == 0)
    {
        barrier_init(&sh.bars[0], NT / 32);
        barrier_init(&sh.bars[1], NT / 32);
    }
    __syncthreads();
    u32 step = 0;

    u16* hist0 = history + (size_t) blockIdx.x * TILES * LENGTH * NODES;
    u16* hist1 = TILES > 1 ? hist0 + (size_t) LENGTH * NODES : nullptr;

    for (int base = blockIdx.x * TILES; base < tiles; base += gridDim.x * TILES)
    {
        for (int i = tid; i < TILES * LENGTH; i += NT)
        {
            const int tile = min(base + i / LENGTH, tiles - 1);
            sh.tile[i / LENGTH].w2[i % LENGTH] = half2_of(targets[(size_t) tile * LENGTH + i % LENGTH]);
        }
        for (int tl = 0; tl < TILES; tl++) fill_costs(sh.tile[tl].cost[0], 0u, tid);
        __syncthreads();

        // Pass 1: free start at position 128, round to 127. History is kept for positions 255, 0..127, the ones the
        // backtrack to position 0 reads.
        for (int v = 0; v < LENGTH; v++)
        {
            const int t = (v + LENGTH / 2) % LENGTH;
            const bool keep = v >= LENGTH / 2 - 1;
            dp_step(sh, c, t, v & 1, tid, v > 0 && v % NORMALIZE_EVERY == 0, v % NORMALIZE_EVERY == NORMALIZE_EVERY - 1,
                    keep ? hist0 : nullptr, keep ? hist1 : nullptr, step++);
            if (!SPLIT) __syncthreads();
        }
        if (SPLIT) __syncthreads();
        argmin_nodes(sh, LENGTH & 1, tid);
        if (warp < TILES)
        {
            const u16* h = warp == 0 ? hist0 : hist1;
            const u32 boundary = backtrack(h, table, sh.tile[warp].w2, sh.node[warp], LENGTH / 2 - 1, 0, 0, nullptr, lane);
            __syncwarp();
            if (lane == 0) sh.node[warp] = boundary;
        }
        __syncthreads();

        // Pass 2: only the boundary node N* may precede position 0; the path is then followed back from N* at 255.
        for (int tl = 0; tl < TILES; tl++)
        {
            fill_costs(sh.tile[tl].cost[0], INF2, tid);
        }
        __syncthreads();
        if (tid < TILES) set_cost(sh.tile[tid].cost[0], (int) sh.node[tid], 0u);
        __syncthreads();
        for (int t = 0; t < LENGTH; t++)
        {
            const bool keep = t < LENGTH - 1;
            dp_step(sh, c, t, t & 1, tid, t > 0 && t % NORMALIZE_EVERY == 0, t % NORMALIZE_EVERY == NORMALIZE_EVERY - 1,
                    keep ? hist0 : nullptr, keep ? hist1 : nullptr, step++);
            if (!SPLIT) __syncthreads();
        }
        if (SPLIT) __syncthreads();
        if (warp < TILES && base + warp < tiles)
        {
            const u16* h = warp == 0 ? hist0 : hist1;
            const u32 boundary = sh.node[warp];
            backtrack(h, table, sh.tile[warp].w2, boundary, LENGTH - 1, 0, boundary, states + (size_t) (base + warp) * LENGTH, lane);
        }
        __syncthreads();
    }
}
