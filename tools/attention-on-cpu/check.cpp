// Runs the fused attention kernel's source on the CPU (cuda-shim.h) against a float64 reference of the same
// semantics (Compute/CausalAttention.cs): grouped heads, windows, soft cap, sinks, rows not a multiple of the
// 64-query tile, one- and two-token rows. Exits 1 when any token's output is off by more than 1e-4 (relative).
// Built by tools/attention-on-cpu.sh once per (head width, value width).
#include "cuda-shim.h"
#include "../../src/Cuda/Kernels/attention.cu"
#include <algorithm>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

static double Run(int rows, int tokens, int heads, int kvHeads, float scale, float softCap, int window, bool withSinks, unsigned seed)
{
    const int d = ATTENTION_HEAD_DIM, dv = ATTENTION_VALUE_DIM;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.f, 1.f);
    long long n = (long long) rows * tokens;
    std::vector<float> q(n * heads * d), k(n * kvHeads * d), v(n * kvHeads * dv), out(n * heads * dv, -12345.f), sinks(heads);
    for (auto* values : { &q, &k, &v })
        for (auto& x : *values)
            x = normal(rng);
    for (auto& x : sinks)
        x = 2 * normal(rng);

    gridDim.x = rows * heads * ((tokens + 63) / 64);
    blockDim.x = 256;
    std::barrier<> barrier(256);
    blockBarrier = &barrier;
    for (unsigned int block = 0; block < gridDim.x; block++)
    {
        blockIdx.x = block;
        std::vector<std::thread> threads;
        for (int t = 0; t < 256; t++)
            threads.emplace_back([&, t] {
                threadIdx.x = t;
                causal_attention(q.data(), k.data(), v.data(), out.data(), tokens, heads, kvHeads, scale, softCap, window, withSinks ? sinks.data() : nullptr);
            });
        for (auto& t : threads)
            t.join();
    }

    double worst = 0;
    int group = heads / kvHeads;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++)
            for (int t = 0; t < tokens; t++)
            {
                int g = h / group, first = std::max(0, t - (window - 1));
                std::vector<double> p(t + 1);
                double m = withSinks ? sinks[h] : -INFINITY;
                for (int s = first; s <= t; s++)
                {
                    double a = 0;
                    for (int c = 0; c < d; c++)
                        a += (double) q[(r * tokens + t) * (long long) heads * d + h * d + c] * k[(r * tokens + s) * (long long) kvHeads * d + g * d + c];
                    a *= scale;
                    if (softCap > 0)
                        a = std::tanh(a / softCap) * softCap;
                    p[s] = a;
                    m = std::max(m, a);
                }
                double sum = withSinks ? std::exp(sinks[h] - m) : 0;
                for (int s = first; s <= t; s++)
                    sum += p[s] = std::exp(p[s] - m);
                double error = 0, norm = 0;
                for (int c = 0; c < dv; c++)
                {
                    double o = 0;
                    for (int s = first; s <= t; s++)
                        o += p[s] / sum * v[(r * tokens + s) * (long long) kvHeads * dv + g * dv + c];
                    double a = out[(r * tokens + t) * (long long) heads * dv + h * dv + c];
                    error += (a - o) * (a - o);
                    norm += o * o;
                }
                worst = std::max(worst, std::sqrt(error / norm));
            }
    std::printf("d %d, values %d: %d rows × %d tokens, heads %d/%d, scale %g, soft cap %g, window %d, sinks %d: worst token %.2e\n",
        d, dv, rows, tokens, heads, kvHeads, scale, softCap, window, withSinks, worst);
    return worst;
}

int main()
{
    const int all = 2147483647;
    float scale = 1.f / std::sqrt((float) ATTENTION_HEAD_DIM);
    double worst = 0;
    worst = std::max(worst, Run(2, 200, 4, 2, scale, 0.f, all, false, 1));
    worst = std::max(worst, Run(1, 64, 2, 2, scale, 0.f, all, false, 2));
    worst = std::max(worst, Run(2, 150, 4, 1, scale, 0.f, 37, false, 3));
    worst = std::max(worst, Run(2, 97, 4, 2, 0.1f, 5.f, 16, false, 4));
    worst = std::max(worst, Run(2, 130, 4, 2, scale, 0.f, 16, true, 5));
    worst = std::max(worst, Run(3, 1, 4, 2, scale, 0.f, all, true, 6));
    worst = std::max(worst, Run(3, 2, 2, 1, scale, 2.f, 3, false, 7));
    worst = std::max(worst, Run(1, 300, 2, 1, scale, 0.f, 100, false, 8));
    std::printf("worst token over all cases: %.2e (limit 1e-4)\n", worst);
    return worst < 1e-4 ? 0 : 1;
}
