using Converter.Cuda.Quantization;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>How threads holding one problem each meet in batches (no GPU needed): what batches the device LDLQ runs.</summary>
[TestFixture]
public sealed class BatchRendezvousTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Test]
    public void ProblemsArrivingWhileABatchRunsFormTheNextBatch()
    {
        var rendezvous = new BatchRendezvous<int, int>();
        var batches = new List<int[]>();
        using var firstRuns = new ManualResetEventSlim();
        using var releaseFirst = new ManualResetEventSlim();
        void Run(IReadOnlyList<int> items)
        {
            lock (batches)
                batches.Add(items.ToArray());
            if (items.Contains(0))
            {
                firstRuns.Set();
                Assert.That(releaseFirst.Wait(Patience), Is.True);
            }
        }

        var first = new Thread(() => rendezvous.Join(7, 0, capacity: 8, Run));
        first.Start();
        Assert.That(firstRuns.Wait(Patience), Is.True);
        var waiting = Enumerable.Range(1, 5).Select(i => new Thread(() => rendezvous.Join(7, i, capacity: 8, Run))).ToList();
        waiting.ForEach(t => t.Start());
        // All five are blocked (one leads the next batch and waits for the runner, four wait for it) before the first ends.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (waiting.Any(t => (t.ThreadState & ThreadState.WaitSleepJoin) == 0) && clock.Elapsed < Patience)
            Thread.Sleep(10);
        Thread.Sleep(50);
        releaseFirst.Set();
        Assert.That(new[] { first }.Concat(waiting).All(t => t.Join(Patience)), Is.True);

        Assert.That(batches, Has.Count.EqualTo(2));
        Assert.That(batches[0], Is.EqualTo(new[] { 0 }));
        Assert.That(batches[1], Is.EquivalentTo(new[] { 1, 2, 3, 4, 5 }));
        Assert.That(rendezvous.Runs, Is.EqualTo((2, 6)));
    }

    [Test]
    public void EveryProblemRunsOnceInABatchOfItsKeyNoLargerThanItsCapacityAndOneBatchAtATime()
    {
        var rendezvous = new BatchRendezvous<int, int>();
        var runs = new System.Collections.Concurrent.ConcurrentBag<int[]>();
        int running = 0, overlapped = 0;
        Parallel.For(0, 200, new ParallelOptions { MaxDegreeOfParallelism = 12 }, i =>
            rendezvous.Join(i % 3, i, capacity: 4, items =>
            {
                if (Interlocked.Increment(ref running) > 1)
                    Interlocked.Increment(ref overlapped);
                runs.Add(items.ToArray());
                Thread.Sleep(1);
                Interlocked.Decrement(ref running);
            }));
        Assert.That(overlapped, Is.Zero, "two batches ran at once");
        Assert.That(runs.SelectMany(r => r).Order(), Is.EqualTo(Enumerable.Range(0, 200)));
        Assert.That(runs.All(r => r.Length is >= 1 and <= 4 && r.All(i => i % 3 == r[0] % 3)), Is.True);
        Assert.That(rendezvous.Runs.Items, Is.EqualTo(200));
    }

    [Test]
    public void AFailureReachesEveryMemberOfItsBatch()
    {
        var rendezvous = new BatchRendezvous<int, int>();
        using var firstRuns = new ManualResetEventSlim();
        using var releaseFirst = new ManualResetEventSlim();
        var first = Task.Run(() => rendezvous.Join(1, 0, 8, _ =>
        {
            firstRuns.Set();
            releaseFirst.Wait(Patience);
        }));
        Assert.That(firstRuns.Wait(Patience), Is.True);
        var failing = Enumerable.Range(1, 3).Select(i => Task.Run(() => rendezvous.Join(1, i, 8, _ => throw new InvalidOperationException("search failed")))).ToArray();
        Thread.Sleep(200);
        releaseFirst.Set();
        first.Wait(Patience);
        foreach (var task in failing)
        {
            var e = Assert.Throws<AggregateException>(() => task.Wait(Patience))!;
            Assert.That(e.InnerException, Is.TypeOf<InvalidOperationException>().With.Message.EqualTo("search failed"));
        }
    }
}
