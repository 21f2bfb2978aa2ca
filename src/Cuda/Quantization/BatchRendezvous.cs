using System.Runtime.ExceptionServices;

namespace Converter.Cuda.Quantization;

/// <summary>
/// Lets threads that each hold one problem run them together. A thread joins the open batch of its key (or opens
/// one and leads it); a leader waits until no other batch runs, closes its batch and runs it for every member; each
/// member returns when its batch is done, rethrowing the batch's failure. A batch runs as soon as the runner is free,
/// so batches form from whoever arrives while the previous one runs, unless the caller says company is coming: then the
/// leader, holding the runner, waits for it a bounded time while its batch has room. With one thread every batch has
/// one problem. Used by <see cref="CudaLdlqSolver"/> so that linears quantized at once (a module's many expert linears,
/// a stage's q/k/v, gate and up) share encoder launches instead of each filling part of the GPU in turn.
/// </summary>
public sealed class BatchRendezvous<TKey, TItem> where TKey : notnull
{
    private readonly Lock _open = new();
    private readonly Lock _runner = new();
    private readonly Dictionary<TKey, Batch> _batches = [];

    /// <summary>Batches run so far and the problems they held (for tests and logs).</summary>
    public (int Batches, int Items) Runs
    {
        get
        {
            lock (_open)
                return (_runs, _items);
        }
    }

    private int _runs;
    private int _items;

    /// <param name="capacity">Problems a batch of this key holds at most; a full batch leaves later ones to the next.</param>
    /// <param name="run">Runs a closed batch, on the leader's thread; never concurrently with another batch.</param>
    public void Join(TKey key, TItem item, int capacity, Action<IReadOnlyList<TItem>> run) => Join(key, item, 1, capacity, run);

    /// <param name="weight">The item's share of <paramref name="capacity"/> (at least 1): a batch holds items while their weights fit, and always one.</param>
    /// <param name="capacity">The weight a batch of this key holds at most; a full batch leaves later ones to the next.</param>
    /// <param name="run">Runs a closed batch, on the leader's thread; never concurrently with another batch.</param>
    /// <param name="companyComing">
    /// Asked by a leader that holds the runner: whether a problem that could join is about to arrive. While it says so
    /// and the batch has room, the leader waits for it, at most <paramref name="gather"/>.
    /// </param>
    public void Join(TKey key, TItem item, int weight, int capacity, Action<IReadOnlyList<TItem>> run, Func<bool>? companyComing = null, TimeSpan gather = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(weight, 1);
        Batch batch;
        bool leader = false;
        lock (_open)
        {
            if (!_batches.TryGetValue(key, out batch!) || batch.Weight + weight > capacity)
            {
                batch = new Batch();
                _batches[key] = batch;
                leader = true;
            }
            batch.Items.Add(item);
            batch.Weight += weight;
        }
        if (leader)
        {
            lock (_runner)
            {
                if (companyComing is not null)
                    Gather(key, batch, capacity, companyComing, gather);
                lock (_open)
                {
                    if (_batches.TryGetValue(key, out var current) && current == batch)
                        _batches.Remove(key);
                    _runs++;
                    _items += batch.Items.Count;
                }
                try
                {
                    run(batch.Items);
                }
                catch (Exception e)
                {
                    batch.Failure = ExceptionDispatchInfo.Capture(e);
                }
                finally
                {
                    batch.Done.Set();
                }
            }
        }
        batch.Done.Wait();
        // The batch is closed once done, so its member count is final: the last member out frees the event.
        if (Interlocked.Increment(ref batch.Left) == batch.Items.Count)
            batch.Done.Dispose();
        batch.Failure?.Throw();
    }

    /// <summary>
    /// Waits while company is coming, the batch is still the open one of its key and has room, at most
    /// <paramref name="gather"/>. Polls each millisecond: the wait is tens of milliseconds (a linear's upload between
    /// its factor and its block loop) beside a block loop of a quarter to a whole second.
    /// </summary>
    private void Gather(TKey key, Batch batch, int capacity, Func<bool> companyComing, TimeSpan gather)
    {
        long deadline = Environment.TickCount64 + (long)gather.TotalMilliseconds;
        while (Environment.TickCount64 < deadline && companyComing())
        {
            lock (_open)
            {
                if (!_batches.TryGetValue(key, out var open) || open != batch || batch.Weight >= capacity)
                    return;
            }
            Thread.Sleep(1);
        }
    }

    private sealed class Batch
    {
        public List<TItem> Items { get; } = [];

        /// <summary>The members' summed weights.</summary>
        public int Weight;

        public ManualResetEventSlim Done { get; } = new();

        public ExceptionDispatchInfo? Failure { get; set; }

        /// <summary>Members that have returned from waiting.</summary>
        public int Left;
    }
}
