using Converter.Cuda.Blas;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// The context's count of the device memory its buffers hold, and its peak (the module line's "GPU allocated peak"),
/// and what an algebra says it keeps (its weight cache and scratch, the line's "held after").
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class DeviceBufferTests : GpuFixture
{
    [Test]
    public void TheContextCountsWhatItsBuffersHoldAndTheirPeak()
    {
        long before = Cuda.AllocatedBytes;
        Cuda.ResetPeak();
        Assert.That(Cuda.PeakAllocatedBytes, Is.EqualTo(before));
        using (var a = Cuda.Allocate<float>(1000))
        {
            Assert.That(Cuda.AllocatedBytes, Is.EqualTo(before + 4000));
            using var b = Cuda.Allocate<double>(10);
            Assert.That(Cuda.AllocatedBytes, Is.EqualTo(before + 4080));
        }
        Assert.That(Cuda.AllocatedBytes, Is.EqualTo(before), "freed buffers are no longer counted");
        Assert.That(Cuda.PeakAllocatedBytes, Is.EqualTo(before + 4080), "the peak stays until reset");
        var empty = Cuda.Allocate<ushort>(0);
        empty.Dispose();
        empty.Dispose();
        Assert.That(Cuda.AllocatedBytes, Is.EqualTo(before), "an empty buffer takes a byte and gives it back once");
        Cuda.ResetPeak();
        Assert.That(Cuda.PeakAllocatedBytes, Is.EqualTo(before));
    }

    /// <summary>
    /// Copies past <see cref="PinnedStaging.ThresholdBytes"/> go through the page-locked buffers: every value arrives, at
    /// offsets and at lengths that are not whole slices, each in order after the copies queued before it (a second
    /// upload over the first, read back, is the second), and both ways at least as fast as the driver's own copies.
    /// </summary>
    [Test]
    public void LargeCopiesGoThroughPageLockedBuffersExactly()
    {
        Assert.That(Cuda.Staging, Is.Not.Null, "page-locked memory");
        var rng = new Random(5);
        long values = (97L << 20) / 4 + 13;
        var first = new float[values];
        var second = new float[values];
        for (long i = 0; i < values; i++)
        {
            first[i] = (float)rng.NextDouble();
            second[i] = -first[i] - 1;
        }
        using var device = Cuda.Allocate<float>(values + 1000);
        device.Fill(0xFF);
        device.CopyFrom(first, 1000);
        device.CopyFrom(second.AsSpan(0, (int)(values / 2)), 1000);
        var back = new float[values];
        device.CopyTo(back, 1000);
        Assert.That(back.AsSpan(0, (int)(values / 2)).SequenceEqual(second.AsSpan(0, (int)(values / 2))), "the later upload wins where they overlap");
        Assert.That(back.AsSpan((int)(values / 2)).SequenceEqual(first.AsSpan((int)(values / 2))), "the rest of the first");
        var head = new float[1000];
        device.CopyTo(head);
        Assert.That(head.All(float.IsNaN), "nothing before the offset was written");

        // Against the driver's copies from pageable memory, best of three each.
        double Rate(Action copy)
        {
            double best = double.MaxValue;
            for (int r = 0; r < 3; r++)
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                copy();
                Cuda.Synchronize();
                best = Math.Min(best, clock.Elapsed.TotalSeconds);
            }
            return values * 4.0 / best / 1e9;
        }
        double up = Rate(() => device.CopyFrom(first)), upDirect = Rate(() => device.CopyFromDirect(first));
        double down = Rate(() => device.CopyTo(back)), downDirect = Rate(() => device.CopyToDirect(back));
        Console.WriteLine($"{values * 4 >> 20} MiB: upload {up:F1} GB/s staged, {upDirect:F1} GB/s direct; download {down:F1} / {downDirect:F1} GB/s");
        Assert.That(up, Is.GreaterThan(0.9 * upDirect));
        Assert.That(down, Is.GreaterThan(0.9 * downDirect));
    }

    /// <summary>
    /// A download into several host arrays in turn (a chunk's output rows into the host states' rows): each gets its
    /// consecutive values exactly, whether the parts are smaller than a staging slice, span several, or are too few
    /// bytes in all to be staged; and the rate is the single copy's or better.
    /// </summary>
    [Test]
    public void ADownloadIntoSeveralArraysFillsEachInTurn()
    {
        var rng = new Random(8);
        int[] sizes = [(3 << 20) + 5, 16 << 20, (40 << 20) + 3, 1, 16 << 20];
        long values = sizes.Sum(s => (long)s);
        var source = new float[values + 64];
        for (long i = 0; i < source.Length; i++)
            source[i] = (float)rng.NextDouble();
        using var device = Cuda.Allocate<float>(source.Length);
        device.CopyFrom(source);
        foreach (int offset in new[] { 0, 64 })
        {
            var parts = sizes.Select(s => new float[s]).ToList();
            device.CopyTo(parts.Select(p => (Memory<float>)p).ToList(), offset);
            long at = offset;
            foreach (var part in parts)
            {
                Assert.That(part.AsSpan().SequenceEqual(source.AsSpan((int)at, part.Length)), $"the part of {part.Length} values at {at}");
                at += part.Length;
            }
        }
        var small = new[] { new float[100], new float[200] };
        device.CopyTo(small.Select(p => (Memory<float>)p).ToList(), 7);
        Assert.That(small[0].AsSpan().SequenceEqual(source.AsSpan(7, 100)) && small[1].AsSpan().SequenceEqual(source.AsSpan(107, 200)), "unstaged");
        Assert.Throws<ArgumentOutOfRangeException>(() => device.CopyTo([new float[source.Length]], 1));

        var rows = Enumerable.Range(0, 6).Select(_ => new float[4 << 20]).ToList();
        var whole = new float[6 * (4 << 20)];
        double Best(Action copy)
        {
            double best = double.MaxValue;
            for (int r = 0; r < 3; r++)
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                copy();
                best = Math.Min(best, clock.Elapsed.TotalSeconds);
            }
            return best;
        }
        double parted = Best(() => device.CopyTo(rows.Select(p => (Memory<float>)p).ToList(), 0)), single = Best(() => device.CopyTo(whole));
        Console.WriteLine($"96 MiB into 6 rows: {whole.Length * 4.0 / parted / 1e9:F1} GB/s; into one array {whole.Length * 4.0 / single / 1e9:F1} GB/s");
        Assert.That(parted, Is.LessThan(1.5 * single));
    }

    [Test]
    public void AnAlgebraSaysWhatItKeeps()
    {
        using var algebra = new CudaDenseAlgebra(Cuda);
        Assert.That(algebra.Held().WeightBytes + algebra.Held().ScratchBytes, Is.Zero);
        long before = Cuda.AllocatedBytes;
        algebra.Scratch("small", 100);
        algebra.Scratch("large", 1000);
        algebra.CachedWeight(new float[300]);
        var (weights, weightBytes, scratchBytes, largest) = algebra.Held(roles: 1);
        Assert.That(weights, Is.EqualTo(1));
        Assert.That(weightBytes, Is.EqualTo(1200));
        // Scratch takes 25% headroom.
        Assert.That(scratchBytes, Is.EqualTo(4 * (125 + 1250)));
        Assert.That(largest, Is.EqualTo(new[] { ("large", 5000L) }));
        Assert.That(Cuda.AllocatedBytes - before, Is.EqualTo(weightBytes + scratchBytes), "all of it counted by the context");
    }
}
