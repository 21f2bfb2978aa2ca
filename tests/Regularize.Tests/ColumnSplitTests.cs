using Converter.Regularize.Ldl;
using Converter.Regularize.Quantization;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Viterbi;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

/// <summary>LDLQ's output columns shared between devices (issue 16): the shares, and the same states and Q as one device's.</summary>
public class ColumnSplitTests
{
    private static readonly CodebookTableCache Tables = new();

    [Test]
    public void SharesFollowTheSpeedsInWholeSpansAndCoverEveryColumn()
    {
        Assert.That(ColumnSplit.Ranges(1024, [1.0, 1.0]), Is.EqualTo(new[] { new ColumnRange(0, 512), new ColumnRange(512, 512) }));
        // 8 spans at 3 : 1 → 6 and 2.
        Assert.That(ColumnSplit.Ranges(1024, [3.0, 1.0]), Is.EqualTo(new[] { new ColumnRange(0, 768), new ColumnRange(768, 256) }));
        // 14336 columns (112 spans) over three: 37.33 each, the spare span to the first by its tie.
        var three = ColumnSplit.Ranges(14336, [1.0, 1.0, 1.0]);
        Assert.That(three.Select(r => r.Count / ColumnSplit.Granule), Is.EqualTo(new[] { 38, 37, 37 }));
        Assert.That(three.Select(r => r.Start), Is.EqualTo(new[] { 0, 38 * 128, 75 * 128 }));
        // Fewer spans than devices: some get none.
        Assert.That(ColumnSplit.Ranges(128, [1.0, 1.0]).Select(r => r.Count), Is.EqualTo(new[] { 128, 0 }));
        Assert.That(() => ColumnSplit.Ranges(100, [1.0]), Throws.ArgumentException);
        Assert.That(() => ColumnSplit.Ranges(128, [1.0, 0.0]), Throws.ArgumentException);
    }

    /// <summary>
    /// Three "devices" (host solvers, each with its own encoder) at uneven speeds give the states and Q of one host
    /// solver to the bit, with the factor and without it, into a given array; one whose share is empty is not asked.
    /// </summary>
    [TestCase(3, new[] { 1.0, 2.5, 0.7 }, 0)]
    [TestCase(2, new[] { 0.4, 1.0, 1.0 }, 2)]
    [TestCase(4, new[] { 1.0, 0.01 }, 1)]
    public void ASplitGivesWhatOneDeviceGives(int bits, double[] speeds, int home)
    {
        const int k = 128, n = 384;
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var rng = new Random(bits);
        var wr = Enumerable.Range(0, k * n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * table.Rms)).ToArray();
        var factor = BlockLdl.Decompose(LdlqSolverTests.RandomSpd(k, rng), k, 0.025).Factor!;
        var asked = new int[speeds.Length];
        var devices = speeds.Select((s, d) => new ColumnSplitDevice(HostLdlqSolver.Instance, b => new TrellisEncoder(table.Memory, b), () => Interlocked.Increment(ref asked[d]), s)).ToList();
        var split = new ColumnSplitSolver(devices, home);
        foreach (var f in new[] { factor, null })
        {
            var expected = HostLdlqSolver.Instance.Quantize(wr, k, n, f, new TrellisEncoder(table.Memory, bits));
            var into = new float[k * n];
            var actual = split.Quantize(wr, k, n, f, new TrellisEncoder(table.Memory, bits), into);
            Assert.That(actual.Quantized, Is.SameAs(into));
            Assert.That(actual.States, Is.EqualTo(expected.States), f is null ? "without factor" : "with factor");
            Assert.That(actual.Quantized, Is.EqualTo(expected.Quantized), f is null ? "without factor" : "with factor");
        }
        var ranges = ColumnSplit.Ranges(n, speeds);
        for (int d = 0; d < speeds.Length; d++)
            Assert.That(asked[d], Is.EqualTo(d == home || ranges[d].Count == 0 ? 0 : 2), $"device {d} (share {ranges[d].Count}) runs on a thread it activates");
    }

    [Test]
    public void TileStatesOfAShareAreWhatPutTileStatesWrote()
    {
        const int k = 64, n = 512;
        var whole = Enumerable.Range(0, k * n).Select(i => (ushort)(i * 7919)).ToArray();
        var share = new ColumnRange(128, 256);
        var part = ColumnSplit.TileStates(whole, k, n, share);
        Assert.That(part, Has.Length.EqualTo(k * 256));
        var back = new ushort[k * n];
        ColumnSplit.PutTileStates(part, k, n, share, back);
        for (int t = 0; t < k * n / 256; t++)
        {
            int tileColumn = t % (n / 16) * 16;
            bool inShare = tileColumn >= share.Start && tileColumn < share.Start + share.Count;
            Assert.That(back.AsSpan(t * 256, 256).ToArray(), Is.EqualTo(inShare ? whole.AsSpan(t * 256, 256).ToArray() : new ushort[256]), $"tile {t}");
        }
    }

    /// <summary>
    /// Devices whose solver quantizes the whole width and keeps its share (as the GPU's does, so that its cuBLAS products
    /// run at the unsplit shape) are given the whole weight and their ranges, and their shares land where one device's would.
    /// </summary>
    [Test]
    public void WholeWidthSharesLandInTheirColumns()
    {
        const int k = 128, n = 512, bits = 3;
        var table = Tables.Get(CodebookSpec.Parse("mul1"));
        var rng = new Random(11);
        var wr = Enumerable.Range(0, k * n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * table.Rms)).ToArray();
        var factor = BlockLdl.Decompose(LdlqSolverTests.RandomSpd(k, rng), k, 0.025).Factor!;
        var solvers = new[] { new WholeWidthSolver(), new WholeWidthSolver() };
        var split = new ColumnSplitSolver(solvers.Select((s, d) => new ColumnSplitDevice(s, b => new TrellisEncoder(table.Memory, b), () => { }, d == 0 ? 1.0 : 3.0)).ToList(), home: 0);
        var expected = HostLdlqSolver.Instance.Quantize(wr, k, n, factor, new TrellisEncoder(table.Memory, bits));
        var actual = split.Quantize(wr, k, n, factor, new TrellisEncoder(table.Memory, bits));
        Assert.That(actual.States, Is.EqualTo(expected.States));
        Assert.That(actual.Quantized, Is.EqualTo(expected.Quantized));
        Assert.That(solvers.Select(s => s.Shares.Single()), Is.EqualTo(new[] { new ColumnRange(0, 128), new ColumnRange(128, 384) }));
    }

    /// <summary>The host loop over the whole width, keeping one share: <see cref="ILdlqSolver.QuantizeColumns(float[], int, int, ColumnRange, float[], ITileEncoder)"/>'s contract run the GPU's way.</summary>
    private sealed class WholeWidthSolver : ILdlqSolver
    {
        public List<ColumnRange> Shares { get; } = [];

        public string Device => "host (whole width)";

        public BlockLdlResult Factor(float[] hessian, int k, double sigma, Compute.IDenseAlgebra algebra) => HostLdlqSolver.Instance.Factor(hessian, k, sigma, algebra);

        public LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, float[]? factor, ITileEncoder encoder, float[]? quantizedInto = null) =>
            HostLdlqSolver.Instance.Quantize(wr, k, n, factor, encoder, quantizedInto);

        public LdlqResult QuantizeColumns(float[] wr, int k, int n, ColumnRange share, float[]? factor, ITileEncoder encoder)
        {
            lock (Shares)
                Shares.Add(share);
            var whole = Quantize(wr, k, n, factor, encoder);
            return new LdlqResult(ColumnSplit.TileStates(whole.States, k, n, share), ColumnSplit.Columns(whole.Quantized, k, n, share));
        }
    }
}
