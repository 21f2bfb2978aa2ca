using Converter.Conversion.Pipeline;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>The modules' files written behind the module loop: one at a time, in order, failures not lost.</summary>
public sealed class ModuleWriteQueueTests
{
    [Test]
    public void WritesRunOneAtATimeInOrderAndDrainWaitsForTheLast()
    {
        var order = new List<int>();
        int running = 0, overlapped = 0;
        using var queue = new ModuleWriteQueue();
        for (int i = 0; i < 5; i++)
        {
            int index = i;
            queue.Enqueue(() =>
            {
                if (Interlocked.Increment(ref running) > 1)
                    Interlocked.Increment(ref overlapped);
                Thread.Sleep(20);
                lock (order)
                    order.Add(index);
                Interlocked.Decrement(ref running);
            });
        }
        queue.Drain();
        Assert.That(order, Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
        Assert.That(overlapped, Is.Zero);
    }

    [Test]
    public void TheWriteRunsWhileTheCallerGoesOn()
    {
        using var started = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        using var queue = new ModuleWriteQueue();
        queue.Enqueue(() =>
        {
            started.Set();
            release.Wait();
        });
        Assert.That(started.Wait(TimeSpan.FromSeconds(10)), Is.True, "the write started without the caller waiting for it");
        release.Set();
        queue.Drain();
    }

    [Test]
    public void AFailedWriteSurfacesAtDrainAsItWasThrown()
    {
        using var queue = new ModuleWriteQueue();
        queue.Enqueue(() => throw new IOException("disk full: model.layers.3"));
        var e = Assert.Throws<IOException>(() => queue.Drain());
        Assert.That(e!.Message, Is.EqualTo("disk full: model.layers.3"));
        Assert.DoesNotThrow(() => queue.Drain(), "reported once");
    }

    [Test]
    public void AFailedWriteStopsTheNextOneFromStarting()
    {
        bool secondRan = false;
        using var queue = new ModuleWriteQueue();
        queue.Enqueue(() => throw new IOException("disk full"));
        Assert.Throws<IOException>(() => queue.Enqueue(() => secondRan = true));
        queue.Drain();
        Assert.That(secondRan, Is.False);
    }
}
