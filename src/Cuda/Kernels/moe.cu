// The mixture-of-experts kernels of the GPU forward (src/Cuda/Models/CudaForwardBackend.cs): routing, per-expert
// token lists, row gathers and weighted scatter-adds. A module of their own, compiled only when a model has experts,
// so that dense models never depend on it (they were written without a GPU at hand; see docs/gpu-notes.md).

#define FULL_MASK 0xffffffffu

// y[0..n) = 0 (the sum a mixture of experts adds its experts' outputs into).
extern "C" __global__ void zero_fill(float* __restrict__ y, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        y[i] = 0.f;
}

// Whether (a, ia) ranks before (b, ib) among a router's experts: higher choice first, the lower index on a tie.
__device__ __forceinline__ bool ranks_before(float a, int ia, float b, int ib)
{
    return a > b || (a == b && ia < ib);
}

// Expert e's score from its logit: scoring 0 softmax, exp(l − max)·inv with inv = 1/Σ exp(l − max); 1 sigmoid.
__device__ __forceinline__ float router_score(float logit, int scoring, float max, float inv)
{
    return scoring == 0 ? expf(logit - max) * inv : 1.f / (1.f + expf(-logit));
}

// Top-k routing of each token (Compute/TopKRouter.cs, in its order of operations), one thread per token over its
// row of `experts` logits: scores (softmax or sigmoid); the choice is the score plus bias[e] when bias is given
// (sigmoid routing's correction bias); rank j takes the best expert that ranks after rank j − 1, so nothing needs
// marking; NaN choices are never taken and a slot left empty gets expert −1, weight 0. With `normalize` the weights
// are divided by (their sum in rank order + normEps), then multiplied by `scale`. Writes selected and weights
// (tokens, topK). With groups > 1 (at most 64) and keptGroups < groups, only the keptGroups groups whose two best
// choices sum highest keep their choices; the others' choices are 0 (TopKRouter.MaskGroups, transformers' masked_fill).
extern "C" __global__ void route_topk(const float* __restrict__ logits, int experts, int topK, int scoring, int normalize, float normEps,
    float scale, const float* __restrict__ bias, int groups, int keptGroups, int* __restrict__ selected, float* __restrict__ weights, long long tokens)
{
    for (long long t = (long long) blockIdx.x * blockDim.x + threadIdx.x; t < tokens; t += (long long) gridDim.x * blockDim.x)
    {
        const float* l = logits + t * experts;
        float max = __int_as_float(0xff800000), inv = 1.f;
        if (scoring == 0)
        {
            for (int e = 0; e < experts; e++)
                max = fmaxf(max, l[e]);
            float sum = 0.f;
            for (int e = 0; e < experts; e++)
                sum += expf(l[e] - max);
            inv = 1.f / sum;
        }
        // Bit g set: group g is dropped from the choice.
        unsigned long long dropped = 0ull;
        if (groups > 1 && keptGroups < groups)
        {
            int size = experts / groups;
            float groupScore[64];
            for (int g = 0; g < groups; g++)
            {
                float first = __int_as_float(0xff800000), second = first;
                for (int e = g * size; e < (g + 1) * size; e++)
                {
                    float s = router_score(l[e], scoring, max, inv);
                    float c = bias != nullptr ? s + bias[e] : s;
                    if (c > first)
                    {
                        second = first;
                        first = c;
                    }
                    else if (c > second)
                        second = c;
                }
                groupScore[g] = first + second;
            }
            for (int g = 0; g < groups; g++)
            {
                int better = 0;
                for (int o = 0; o < groups; o++)
                    better += (o != g && ranks_before(groupScore[o], o, groupScore[g], g)) ? 1 : 0;
                if (better >= keptGroups)
                    dropped |= 1ull << g;
            }
        }
        int groupSize = groups > 1 ? experts / groups : experts;
        int* sel = selected + t * topK;
        float* w = weights + t * topK;
        for (int j = 0; j < topK; j++)
        {
            sel[j] = -1;
            w[j] = 0.f;
        }
        int previous = -1;
        float previousChoice = 0.f;
        for (int j = 0; j < topK; j++)
        {
            int best = -1;
            float bestChoice = 0.f, bestScore = 0.f;
            for (int e = 0; e < experts; e++)
            {
                float s = router_score(l[e], scoring, max, inv);
                float c = bias != nullptr ? s + bias[e] : s;
                if ((dropped >> (e / groupSize)) & 1ull)
                    c = 0.f;
                if (c != c || (previous >= 0 && !ranks_before(previousChoice, previous, c, e)))
                    continue;
                if (best < 0 || ranks_before(c, e, bestChoice, best))
                {
                    best = e;
                    bestChoice = c;
                    bestScore = s;
                }
            }
            if (best < 0)
                break;
            sel[j] = best;
            w[j] = bestScore;
            previous = best;
            previousChoice = bestChoice;
        }
        if (normalize)
        {
            float sum = 0.f;
            for (int j = 0; j < topK; j++)
                sum += w[j];
            sum += normEps;
            for (int j = 0; j < topK; j++)
                w[j] /= sum;
        }
        if (scale != 1.f)
        {
            for (int j = 0; j < topK; j++)
                w[j] *= scale;
        }
    }
}

// Each expert's token list from route_topk's choices, one block per expert (blockDim a multiple of 32): the tokens
// that chose it in ascending order with their weights or, with everyToken (calibration), every token, weight 0 where
// it was not chosen. Expert e's list starts at e·tokens of lists/listWeights; counts[e] gets its length. Ordered by
// a block-wide prefix sum over each chunk of blockDim tokens, so the lists do not depend on thread timing.
extern "C" __global__ void expert_lists(const int* __restrict__ selected, const float* __restrict__ weights, int topK, long long tokens,
    int everyToken, int* __restrict__ lists, float* __restrict__ listWeights, int* __restrict__ counts)
{
    __shared__ int warpTotals[32];
    __shared__ int running;
    int e = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    int* list = lists + (long long) e * tokens;
    float* listWeight = listWeights + (long long) e * tokens;
    if (threadIdx.x == 0)
        running = 0;
    __syncthreads();
    for (long long start = 0; start < tokens; start += blockDim.x)
    {
        long long t = start + threadIdx.x;
        bool take = false;
        float w = 0.f;
        if (t < tokens)
        {
            for (int j = 0; j < topK; j++)
            {
                if (selected[t * topK + j] == e)
                {
                    take = true;
                    w = weights[t * topK + j];
                }
            }
            take = take || everyToken != 0;
        }
        unsigned ballot = __ballot_sync(FULL_MASK, take);
        if (lane == 0)
            warpTotals[warp] = __popc(ballot);
        __syncthreads();
        int position = running + __popc(ballot & ((1u << lane) - 1u));
        for (int i = 0; i < warp; i++)
            position += warpTotals[i];
        if (take)
        {
            list[position] = (int) t;
            listWeight[position] = w;
        }
        // Everyone has read running and warpTotals before they change.
        __syncthreads();
        if (threadIdx.x == 0)
        {
            for (int i = 0; i < warps; i++)
                running += warpTotals[i];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
        counts[e] = running;
}

// y (n/cols rows of cols) = the rows list[0..n/cols) of x: an expert's tokens, gathered.
extern "C" __global__ void gather_rows(const float* __restrict__ x, const int* __restrict__ list, int cols, float* __restrict__ y, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
        y[i] = x[(long long) list[i / cols] * cols + i % cols];
}

// target[list[r]] += y[r]·w[r] for each row r of y (n/cols rows of cols), skipping weight 0 (tokens a calibration
// pass ran the expert on without choosing it): an expert's output into the mixture. The product is rounded before
// the sum (__fmul_rn keeps it out of an FMA), as the host and transformers' `index_add_(expert(x) * w)` round it.
// An expert's list holds each token once, so no two threads write one element.
extern "C" __global__ void scatter_add_rows(float* target, const float* __restrict__ y, const int* __restrict__ list, const float* __restrict__ w,
    int cols, long long n)
{
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x)
    {
        long long r = i / cols;
        float weight = w[r];
        if (weight != 0.f)
            target[(long long) list[r] * cols + i % cols] += __fmul_rn(y[i], weight);
    }
}
