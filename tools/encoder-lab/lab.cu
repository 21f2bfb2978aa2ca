// Encoder lab (GPU machine, nvcc): times one version of src/Cuda/Kernels/viterbi.cu, included with -DKSRC, on
// Gaussian tiles (seed 1234, sigma 1.24) searched over the MCG table; prints tiles/s (median launch), the relative
// MSE, how many trellis links break tail-biting, and, given the states file of another version on the same tiles,
// how many tiles differ and the MSE ratio. A kernel change that claims "no numeric change" must show 0 differing
// tiles at every K. Usage (run.sh does this for every K): lab TILES REPEATS [STATES_OUT [BASELINE_STATES]].
// The history scratch is allocated twice over, enough for a version that double-buffers it.
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <vector>
#include <random>
#include <algorithm>
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include KSRC
#ifndef HISTORY_HALVES
#define HISTORY_HALVES(blocks, tiles) ((size_t)(blocks) * TILES * 256 * NODES * 2)
#endif
#ifndef LAUNCH
#define LAUNCH viterbi_tiles<<<grid, NT, sh>>>(dt, tiles, dtab, dst, dh)
#endif
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e)); exit(1); } } while (0)
static float mcg(uint32_t s) {
  uint32_t x = s * 0xCBAC1FEDu; x = (x & 0x8FFF8FFFu) ^ 0x3B603B60u;
  __half_raw a, b; a.x = x & 0xFFFF; b.x = x >> 16;
  return __half2float(__float2half(__half2float(__half(a)) + __half2float(__half(b))));
}
int main(int argc, char** argv) {
  int tiles = argc > 1 ? atoi(argv[1]) : 16384, reps = argc > 2 ? atoi(argv[2]) : 3;
  const char* outf = argc > 3 ? argv[3] : nullptr; const char* basef = argc > 4 ? argv[4] : nullptr;
  std::vector<float> table(65536); std::vector<u16> half(65536);
  for (int s = 0; s < 65536; s++) { table[s] = mcg(s); __half h = __float2half(table[s]); half[s] = *reinterpret_cast<u16*>(&h); }
  std::mt19937 rng(1234); std::normal_distribution<float> nd(0.f, 1.24f);
  std::vector<float> t((size_t)tiles * 256); for (auto& v : t) v = nd(rng);
  cudaDeviceProp p; CK(cudaGetDeviceProperties(&p, 0)); int blocks = p.multiProcessorCount;
  size_t sh = sizeof(BlockShared);
  CK(cudaFuncSetAttribute(viterbi_tiles, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh));
  float *dt; u16 *dtab, *dst, *dh;
  size_t histHalves = HISTORY_HALVES(blocks, tiles);
  CK(cudaMalloc(&dt, t.size() * 4)); CK(cudaMalloc(&dtab, 65536 * 2)); CK(cudaMalloc(&dst, t.size() * 2)); CK(cudaMalloc(&dh, histHalves * 2));
  CK(cudaMemcpy(dt, t.data(), t.size() * 4, cudaMemcpyHostToDevice)); CK(cudaMemcpy(dtab, half.data(), 65536 * 2, cudaMemcpyHostToDevice));
  int grid = std::min(blocks, (tiles + TILES - 1) / TILES);
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  LAUNCH; CK(cudaDeviceSynchronize());
  std::vector<float> ms;
  for (int r = 0; r < reps; r++) { cudaEventRecord(a); LAUNCH; cudaEventRecord(b); CK(cudaEventSynchronize(b)); float m; cudaEventElapsedTime(&m, a, b); ms.push_back(m); }
  CK(cudaGetLastError());
  std::sort(ms.begin(), ms.end()); float med = ms[ms.size() / 2];
  std::vector<u16> st(t.size()); CK(cudaMemcpy(st.data(), dst, st.size() * 2, cudaMemcpyDeviceToHost));
  double se = 0, ss = 0; long bad = 0;
  for (int i = 0; i < tiles; i++) for (int k = 0; k < 256; k++) {
    u16 s = st[(size_t)i * 256 + k], pr = st[(size_t)i * 256 + (k + 255) % 256];
    if (((uint32_t)pr & ((1u << (16 - K)) - 1)) != ((uint32_t)s >> K)) bad++;
    double d = table[s] - t[(size_t)i * 256 + k]; se += d * d; ss += (double)t[(size_t)i * 256 + k] * t[(size_t)i * 256 + k]; }
  double mse = se / ss;
  printf("K=%d tiles=%d blocks=%d shared=%zu  %.3f ms  %.1f k tiles/s  rel-mse %.6f  broken-links %ld", K, tiles, grid, sh, med, tiles / med, mse, bad);
  if (outf) { FILE* f = fopen(outf, "wb"); fwrite(st.data(), 2, st.size(), f); fclose(f); }
  if (basef) {
    std::vector<u16> bs(st.size()); FILE* f = fopen(basef, "rb"); size_t n = fread(bs.data(), 2, bs.size(), f); fclose(f);
    if (n == bs.size()) { long diff = 0; double se0 = 0;
      for (int i = 0; i < tiles; i++) { bool d = false; for (int k = 0; k < 256; k++) { size_t q = (size_t)i * 256 + k; if (bs[q] != st[q]) d = true; double e = table[bs[q]] - t[q]; se0 += e * e; } diff += d; }
      printf("  tiles-differing %ld  mse-ratio %.6f", diff, se / se0); }
  }
  printf("\n"); return 0;
}
