using Converter.Trellis.Codebooks;
using Converter.Trellis.Distortion;
using Converter.Trellis.Tiles;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Trellis.Tests;

public class ViterbiEncoderTests
{
    private static readonly CodebookTableCache Tables = new();

    private static float[] UnitRms(string codebook)
    {
        var table = Tables.Get(CodebookSpec.Parse(codebook));
        return table.Scaled(table.Rms);
    }

    private static double SquaredError(ReadOnlySpan<float> table, ReadOnlySpan<ushort> states, ReadOnlySpan<float> target)
    {
        double sum = 0;
        for (int t = 0; t < target.Length; t++)
        {
            double e = table[states[t]] - target[t];
            sum += e * e;
        }
        return sum;
    }

    /// <summary>Every DP step this machine can run: scalar reference, 256-bit, and 512-bit where supported.</summary>
    private static IEnumerable<ViterbiTailBiting.Step> Steps()
    {
        yield return ReferenceViterbiEncoder.Step;
        if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated)
            yield return SimdViterbiEncoder.Step;
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            yield return SimdViterbiEncoder.Wide.Step;
    }

    [Test]
    public void SimdStepsEqualReferenceBitForBit([Range(1, 8)] int bits, [Values("3inst", "mcg", "mul1")] string codebook)
    {
        var table = UnitRms(codebook);
        var ws = new ViterbiWorkspace(bits);
        var target = GaussianTiles.Generate(1, seed: 200 + bits);
        var reference = new ushort[256];
        ViterbiTailBiting.Encode(table, target, reference, ws, ReferenceViterbiEncoder.Step);
        foreach (var step in Steps().Skip(1))
        {
            var simd = new ushort[256];
            ViterbiTailBiting.Encode(table, target, simd, ws, step);
            Assert.That(simd, Is.EqualTo(reference), step.Method.DeclaringType?.Name);
        }
    }

    [Test]
    public void SimdEncoderEqualsReferenceBitForBit([Range(1, 8)] int bits, [Values("3inst", "mcg", "mul1")] string codebook)
    {
        var table = UnitRms(codebook);
        var ws = new ViterbiWorkspace(bits);
        var target = GaussianTiles.Generate(2, seed: 100 + bits);
        var reference = new ushort[256];
        var simd = new ushort[256];
        for (int tile = 0; tile < 2; tile++)
        {
            var x = target.AsSpan(tile * 256, 256);
            ReferenceViterbiEncoder.EncodeTile(table, x, reference, ws);
            SimdViterbiEncoder.EncodeTile(table, x, simd, ws);
            Assert.That(simd, Is.EqualTo(reference), $"tile {tile}");
        }
    }

    [Test]
    public void EveryEncodedTileIsTailBitingAndSurvivesPacking([Range(1, 8)] int bits)
    {
        var table = UnitRms("mul1");
        var encoder = new TrellisEncoder(table, bits);
        var targets = GaussianTiles.Generate(8, seed: bits);
        var states = new ushort[targets.Length];
        var decoded = new float[targets.Length];
        encoder.Encode(targets, states, decoded);
        var packed = new short[TrellisPacking.WordsPerTile(bits)];
        var unpacked = new ushort[256];
        for (int tile = 0; tile < 8; tile++)
        {
            var s = states.AsSpan(tile * 256, 256);
            Assert.That(TrellisPacking.IsTailBiting(s, bits), Is.True, $"tile {tile}");
            TrellisPacking.Pack(s, bits, packed);
            TrellisPacking.Unpack(packed, bits, unpacked);
            Assert.That(unpacked, Is.EqualTo(s.ToArray()));
            for (int t = 0; t < 256; t++)
                Assert.That(decoded[tile * 256 + t], Is.EqualTo(table[s[t]]));
        }
    }

    [Test]
    public void IdealSequenceIsReproducedExactly([Values(1, 2, 3, 4, 5, 6, 7, 8)] int bits, [Values("3inst", "mcg", "mul1")] string codebook)
    {
        // exllamav3's test_encode_ideal: decode a valid tail-biting sequence, re-encode the values, get them back.
        var table = UnitRms(codebook);
        var rng = new Random(7 * bits);
        var encoder = new TrellisEncoder(table, bits, maxThreads: 1);
        var targets = new float[2 * 256];
        for (int tile = 0; tile < 2; tile++)
        {
            var ideal = TrellisSequences.RandomTailBiting(bits, rng);
            for (int t = 0; t < 256; t++)
                targets[tile * 256 + t] = table[ideal[t]];
        }
        var states = new ushort[targets.Length];
        var decoded = new float[targets.Length];
        encoder.Encode(targets, states, decoded);
        Assert.That(decoded, Is.EqualTo(targets));
    }

    // Short cyclic trellises with 16 ≤ T·K ≤ 20, so every tail-biting sequence is one cyclic bitstream of T·K bits.
    [TestCase(1, 18)]
    [TestCase(2, 9)]
    [TestCase(3, 6)]
    [TestCase(4, 5)]
    [TestCase(5, 4)]
    [TestCase(6, 3)]
    [TestCase(8, 2)]
    public void MatchesExhaustiveSearchOnAShortTrellis(int bits, int length)
    {
        var table = UnitRms("3inst");
        var ws = new ViterbiWorkspace(bits);
        var rng = new Random(bits * 31 + length);
        int totalBits = bits * length;
        for (int trial = 0; trial < 3; trial++)
        {
            var target = new float[length];
            for (int t = 0; t < length; t++)
                target[t] = (float)(rng.NextDouble() * 4 - 2);

            // Exhaustive: the best sequence overall, and the best per boundary node (s_0 >> K).
            double bestAll = double.MaxValue;
            var bestPerBoundary = new Dictionary<int, double>();
            var stream = new bool[totalBits];
            for (long code = 0; code < 1L << totalBits; code++)
            {
                for (int b = 0; b < totalBits; b++)
                    stream[b] = ((code >> (totalBits - 1 - b)) & 1) != 0;
                var states = TrellisSequences.FromCyclicStream(stream, bits, length);
                double cost = SquaredError(table, states, target);
                bestAll = Math.Min(bestAll, cost);
                int boundary = states[0] >> bits;
                bestPerBoundary[boundary] = Math.Min(bestPerBoundary.GetValueOrDefault(boundary, double.MaxValue), cost);
            }

            foreach (var step in Steps())
            {
                var encoded = new ushort[length];
                int found = ViterbiTailBiting.FindBoundary(table, target, ws, step);
                ViterbiTailBiting.EncodeFromBoundary(table, target, encoded, ws, step, found);
                Assert.That(TrellisPacking.IsTailBiting(encoded, bits), Is.True);
                double cost = SquaredError(table, encoded, target);
                // Pass 2 is an exact search given the boundary; pass 1's boundary is a heuristic, never better than optimal.
                Assert.That(cost, Is.EqualTo(bestPerBoundary[found]).Within(1e-5 * (1 + cost)));
                Assert.That(cost, Is.GreaterThanOrEqualTo(bestAll - 1e-5));

                // Every other boundary, too: the constrained pass must find that boundary's optimum.
                foreach (var boundary in bestPerBoundary.Keys.Where(b => b % 97 == 3).Take(5))
                {
                    ViterbiTailBiting.EncodeFromBoundary(table, target, encoded, ws, step, boundary);
                    Assert.That(encoded[0] >> bits, Is.EqualTo(boundary));
                    Assert.That(SquaredError(table, encoded, target), Is.EqualTo(bestPerBoundary[boundary]).Within(1e-5 * (1 + cost)));
                }
            }
        }
    }

    [Test]
    public void HigherKGivesLowerError()
    {
        var table = UnitRms("mcg");
        var targets = GaussianTiles.Generate(4, seed: 3);
        double previous = double.MaxValue;
        for (int bits = 1; bits <= 8; bits++)
        {
            var mse = new TileQuantizer(new TrellisEncoder(table, bits)).MeanSquaredError(targets);
            Assert.That(mse, Is.LessThan(previous), $"K={bits}");
            previous = mse;
        }
    }

    [Test]
    public void DeterministicAcrossThreadCounts()
    {
        var table = UnitRms("mul1");
        var targets = GaussianTiles.Generate(6, seed: 11);
        var one = new ushort[targets.Length];
        var all = new ushort[targets.Length];
        new TrellisEncoder(table, 3, maxThreads: 1).Encode(targets, one, Memory<float>.Empty);
        new TrellisEncoder(table, 3).Encode(targets, all, Memory<float>.Empty);
        Assert.That(all, Is.EqualTo(one));
    }
}
