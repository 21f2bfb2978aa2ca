using System.Runtime.ExceptionServices;

namespace Converter.Cuda.Quantization;

/// <summary>
/// Lets threads that each hold one problem run them together. A thread joins the open batch of its key (or opens
/// one and leads it); a leader waits until no other batch runs, closes its batch and runs it for every member; each
/// member returns when its batch is done, rethrowing the batch's failure. No thread waits for company: a batch runs as
/// soon as the runner is free, so batches form from whoever arrives while the previous one runs. With one thread every
/// batch has one problem. Used by <see cref="CudaLdlqSolver"/> so that a module's many same-shaped expert linears, quantized
/// by many threads at once, share encoder launches instead of each filling a fifth of the GPU.
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
    public void Join(TKey key, TItem item, int capacity, Action<IReadOnlyList<TItem>> run)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Batch batch;
        bool leader = false;
        lock (_open)
        {
            if (!_batches.TryGetValue(key, out batch!) || batch.Items.Count >= capacity)
            {
                batch = new Batch();
                _batches[key] = batch;
                leader = true;
            }
            batch.Items.Add(item);
        }
        if (leader)
        {
            lock (_runner)
            {
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

    private sealed class Batch
    {
        public List<TItem> Items { get; } = [];

        public ManualResetEventSlim Done { get; } = new();

        public ExceptionDispatchInfo? Failure { get; set; }

        /// <summary>Members that have returned from waiting.</summary>
        public int Left;
    }
}
