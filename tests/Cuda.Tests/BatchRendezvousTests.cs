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
        using var recorder = new HeldBatches(held: 0);
        var batches = recorder.Batches;
        void Run(IReadOnlyList<int> items) => recorder.Run(items);

        var first = new Thread(() => rendezvous.Join(7, 0, capacity: 8, Run));
        first.Start();
        Assert.That(recorder.HeldRuns.Wait(Patience), Is.True);
        var waiting = Enumerable.Range(1, 5).Select(i => new Thread(() => rendezvous.Join(7, i, capacity: 8, Run))).ToList();
        waiting.ForEach(t => t.Start());
        // All five are blocked (one leads the next batch and waits for the runner, four wait for it) before the first ends.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (waiting.Any(t => (t.ThreadState & ThreadState.WaitSleepJoin) == 0) && clock.Elapsed < Patience)
            Thread.Sleep(10);
        Thread.Sleep(50);
        recorder.Release.Set();
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

    /// <summary>Items fill a batch while their weights fit its capacity; one that does not fit opens the next, and one heavier than the capacity runs alone.</summary>
    [Test]
    public void WeightsFillABatchUpToItsCapacity()
    {
        var rendezvous = new BatchRendezvous<int, int>();
        using var recorder = new HeldBatches(held: 1);
        void Run(IReadOnlyList<int> items) => recorder.Run(items);

        var threads = new List<Thread> { new(() => rendezvous.Join(7, 1, weight: 1, capacity: 10, Run)) };
        threads[0].Start();
        Assert.That(recorder.HeldRuns.Wait(Patience), Is.True);
        // Joined one at a time, each blocked before the next starts: 6 and 4 fill a batch, 5 opens one, 12 is alone.
        foreach (int weight in new[] { 6, 4, 5, 12 })
        {
            var thread = new Thread(() => rendezvous.Join(7, weight, weight, capacity: 10, Run));
            thread.Start();
            threads.Add(thread);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while ((thread.ThreadState & ThreadState.WaitSleepJoin) == 0 && clock.Elapsed < Patience)
                Thread.Sleep(5);
        }
        recorder.Release.Set();
        Assert.That(threads.All(t => t.Join(Patience)), Is.True);
        Assert.That(recorder.Batches.Select(b => b.Order().ToArray()), Is.EquivalentTo(new[] { new[] { 1 }, new[] { 4, 6 }, new[] { 5 }, new[] { 12 } }));
    }

    /// <summary>
    /// A leader told that company is coming waits for it (the second item joins its batch, and the wait ends when it
    /// arrives, not at the bound); told so when none comes, it waits the bound and runs alone.
    /// </summary>
    [Test]
    public void ALeaderWaitsBoundedlyForCompanyThatIsComing()
    {
        var rendezvous = new BatchRendezvous<int, int>();
        var batches = new System.Collections.Concurrent.ConcurrentBag<int[]>();
        int coming = 1;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var leader = Task.Run(() => rendezvous.Join(3, 0, 1, 8, items => batches.Add(items.ToArray()), () => Volatile.Read(ref coming) > 0, Patience));
        Thread.Sleep(200);
        var second = Task.Run(() =>
        {
            Volatile.Write(ref coming, 0);
            rendezvous.Join(3, 1, 1, 8, items => batches.Add(items.ToArray()), () => false, Patience);
        });
        Assert.That(Task.WaitAll([leader, second], Patience), Is.True);
        Assert.That(clock.Elapsed, Is.LessThan(Patience / 2), "the wait ended when company came");
        Assert.That(batches.Single().Order(), Is.EqualTo(new[] { 0, 1 }));

        clock.Restart();
        var lonely = new List<int[]>();
        rendezvous.Join(3, 2, 1, 8, items => lonely.Add(items.ToArray()), () => true, TimeSpan.FromMilliseconds(100));
        Assert.That(clock.Elapsed.TotalMilliseconds, Is.InRange(90, 5000));
        Assert.That(lonely.Single(), Is.EqualTo(new[] { 2 }));
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

    /// <summary>Records the batches run, and holds the one with item <paramref name="held"/> until <see cref="Release"/> is set.</summary>
    private sealed class HeldBatches(int held) : IDisposable
    {
        public List<int[]> Batches { get; } = [];

        public ManualResetEventSlim HeldRuns { get; } = new();

        public ManualResetEventSlim Release { get; } = new();

        public void Run(IReadOnlyList<int> items)
        {
            lock (Batches)
                Batches.Add(items.ToArray());
            if (items.Contains(held))
            {
                HeldRuns.Set();
                Assert.That(Release.Wait(Patience), Is.True);
            }
        }

        public void Dispose()
        {
            HeldRuns.Dispose();
            Release.Dispose();
        }
    }
}
