using System.Diagnostics;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Distortion;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;

namespace Converter.Bench;

/// <summary>One encoder timing: which encoder, K, threads, and the throughput.</summary>
public sealed record EncoderTiming(string Encoder, int Bits, int Threads, int Tiles, double Seconds, double TilesPerSecond, double NanosecondsPerCandidate);

/// <summary>
/// Times the CPU Viterbi encoders on the same N(0,1) tiles: the scalar reference (one thread) and the SIMD encoder
/// on one thread and on all threads. A tile costs 2 passes × 256 positions × 65536 candidate states at every K,
/// so ns per candidate compares K values and machines directly.
/// </summary>
public static class EncoderBenchmark
{
    private const double CandidatesPerTile = 2.0 * TileLayout.Length * CodebookTable.Size;

    private static readonly string SimdName = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "simd (Vector512)" : "simd (Vector256)";

    public static List<EncoderTiming> Run(CodebookSpec spec, IReadOnlyList<int> bitsList, int tiles, int referenceTiles, Action<EncoderTiming> report)
    {
        var table = CodebookTable.Build(spec);
        var unit = table.Scaled(table.Rms);
        var data = GaussianTiles.Generate(tiles, seed: 1);
        var timings = new List<EncoderTiming>();
        foreach (var bits in bitsList)
        {
            var ws = new ViterbiWorkspace(bits);
            var states = new ushort[data.Length];
            // Warm up the JIT (tiered compilation would otherwise time tier-0 code).
            for (int i = 0; i < 2; i++)
            {
                SimdViterbiEncoder.EncodeTile(unit, data.AsSpan(0, 256), states.AsSpan(0, 256), ws);
                ReferenceViterbiEncoder.EncodeTile(unit, data.AsSpan(0, 256), states.AsSpan(0, 256), ws);
            }

            var sw = Stopwatch.StartNew();
            for (int t = 0; t < referenceTiles; t++)
                ReferenceViterbiEncoder.EncodeTile(unit, data.AsSpan(t * 256, 256), states.AsSpan(t * 256, 256), ws);
            Add("reference (scalar)", bits, 1, referenceTiles, sw.Elapsed.TotalSeconds);

            foreach (var threads in new[] { 1, Environment.ProcessorCount }.Distinct())
            {
                var encoder = new TrellisEncoder(unit, bits, threads);
                encoder.Encode(data.AsMemory(0, 256 * Math.Min(tiles, threads)), states.AsMemory(0, 256 * Math.Min(tiles, threads)), Memory<float>.Empty);
                sw.Restart();
                encoder.Encode(data, states, Memory<float>.Empty);
                Add(SimdName, bits, threads, tiles, sw.Elapsed.TotalSeconds);
            }
        }
        return timings;

        void Add(string name, int bits, int threads, int count, double seconds)
        {
            var timing = new EncoderTiming(name, bits, threads, count, seconds, count / seconds, seconds / (count * CandidatesPerTile) * 1e9 * threads);
            timings.Add(timing);
            report(timing);
        }
    }
}
