using Converter.Cuda.Blas;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary><see cref="WeightCachePolicy"/> on the host: which entries go, and what a lean capture's cyclic passes upload under each rule.</summary>
public sealed class WeightCachePolicyTests
{
    [Test]
    public void PastTheCountTheLeastRecentlyUsedGo()
    {
        Assert.That(WeightCachePolicy.Evictions([10, 20, 30, 40], 5, maxCount: 3, maxBytes: 1000, newestFirstOverBytes: true), Is.EqualTo(new[] { 3, 2 }));
        Assert.That(WeightCachePolicy.Evictions([10, 20], 5, maxCount: 3, maxBytes: 1000, newestFirstOverBytes: true), Is.Empty);
    }

    [Test]
    public void PastTheBytesTheNewestOrTheOldestGo()
    {
        Assert.That(WeightCachePolicy.Evictions([10, 20, 30, 40], 25, maxCount: 10, maxBytes: 110, newestFirstOverBytes: false), Is.EqualTo(new[] { 3 }));
        Assert.That(WeightCachePolicy.Evictions([10, 20, 30, 40], 25, maxCount: 10, maxBytes: 110, newestFirstOverBytes: true), Is.EqualTo(new[] { 1 }), "the newest that makes room alone");
        Assert.That(WeightCachePolicy.Evictions([10, 20, 30, 40], 65, maxCount: 10, maxBytes: 110, newestFirstOverBytes: true), Is.EqualTo(new[] { 0, 1, 2 }),
            "none alone: the newest, until one does");
        Assert.That(WeightCachePolicy.Evictions([10, 20], 500, maxCount: 10, maxBytes: 110, newestFirstOverBytes: true), Is.EqualTo(new[] { 0, 1 }), "a weight past the cap alone empties it");
    }

    /// <summary>
    /// A 70B layer's down_proj capture stage, per chunk: both streams' q/k/v/o and gate/up (originals, then
    /// reconstructions) and down_proj's original for the projected cross sum, 5.9 GB against a lean plan's 4.2 GB cap,
    /// 16 chunks. LRU uploads everything every chunk; newest-first keeps most of it.
    /// </summary>
    [Test]
    public void ALeanCapturesCyclicPassesUploadOnlyTheirOverflow()
    {
        const long mb = 1 << 20;
        long[] block = [256 * mb, 32 * mb, 32 * mb, 256 * mb, 896 * mb, 896 * mb];
        var cycle = block.Select((b, i) => (Id: i, Bytes: b)).Concat(block.Select((b, i) => (Id: 10 + i, Bytes: b))).Append((Id: 20, Bytes: 896 * mb)).ToList();
        long cap = 4000 * mb, each = cycle.Sum(w => w.Bytes);
        long Uploaded(bool newestFirst)
        {
            var cache = new List<(int Id, long Bytes)>();
            long uploaded = 0;
            for (int chunk = 0; chunk < 16; chunk++)
            {
                foreach (var w in cycle)
                {
                    int at = cache.FindIndex(e => e.Id == w.Id);
                    if (at >= 0)
                    {
                        cache.RemoveAt(at);
                    }
                    else
                    {
                        foreach (int i in WeightCachePolicy.Evictions(cache.Select(e => e.Bytes).ToList(), w.Bytes, 100, cap, newestFirst).OrderDescending())
                            cache.RemoveAt(i);
                        uploaded += w.Bytes;
                    }
                    cache.Insert(0, w);
                }
            }
            return uploaded;
        }
        long lru = Uploaded(false), newest = Uploaded(true);
        TestContext.Out.WriteLine($"per chunk {each / mb} MB against {cap / mb} MB: LRU {lru / mb} MB, newest first {newest / mb} MB");
        Assert.That(lru, Is.EqualTo(16 * each), "LRU misses every weight of every chunk");
        Assert.That(newest, Is.LessThan(lru / 2));
    }
}
