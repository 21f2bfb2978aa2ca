using Converter.Cuda.Native;

namespace Converter.Cuda;

/// <summary>
/// Large copies between host arrays and the device through a few page-locked host buffers: the host copies a slice into
/// one while the GPU's copy engine moves the one before, on the default stream (so the copies stay ordered with the
/// kernels as the plain ones were). From pageable memory the driver stages each copy itself, on one thread: about
/// 9.5 GB/s on an H100 (a 70B layer's 94 GB of capture weight uploads took 9.9 s, session 27).
/// </summary>
/// <remarks>
/// An upload returns once its last slice is queued: the source may change at once, and the device sees the data in stream
/// order. A download returns with the data in the destination. One copy at a time per context (they share the buffers).
/// </remarks>
internal sealed unsafe class PinnedStaging : IDisposable
{
    /// <summary>Copies of at least this many bytes go through the staging buffers; smaller ones directly.</summary>
    public const long ThresholdBytes = 8L << 20;

    /// <summary>Bytes of one staging buffer: a slice's copy takes ~1 ms either side, so the per-slice costs stay small.</summary>
    private const int SliceBytes = 32 << 20;

    private const int BufferCount = 3;

    /// <summary>Host copies of at least this many bytes are split over this many threads.</summary>
    private const int HostCopyParts = 4;

    // CU_EVENT_DISABLE_TIMING
    private const uint DisableTiming = 2;

    private readonly CudaContext _context;
    private readonly IntPtr[] _buffers = new IntPtr[BufferCount];
    private readonly IntPtr[] _copied = new IntPtr[BufferCount];
    private readonly Lock _gate = new();
    private int _next;
    private bool _disposed;

    private PinnedStaging(CudaContext context) => _context = context;

    /// <summary>The staging buffers of <paramref name="context"/> (current on this thread), or null where page-locked memory cannot be had.</summary>
    public static PinnedStaging? TryCreate(CudaContext context)
    {
        var staging = new PinnedStaging(context);
        for (int i = 0; i < BufferCount; i++)
        {
            if (CudaDriver.cuMemAllocHost(out staging._buffers[i], SliceBytes) != 0 || CudaDriver.cuEventCreate(out staging._copied[i], DisableTiming) != 0)
            {
                staging.Dispose();
                return null;
            }
        }
        return staging;
    }

    /// <summary>Queues <paramref name="bytes"/> from <paramref name="source"/> to the device address <paramref name="destination"/>.</summary>
    public void Upload(ulong destination, byte* source, long bytes)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // Buffers in turn across calls too: a run of row-sized uploads (a state row of a 70B at 512 tokens is 16 MB)
            // then overlaps each row's host copy with the row before's transfer, where starting every call at the
            // first buffer waited for the last call's transfer.
            int b = _next;
            for (long offset = 0; offset < bytes; offset += SliceBytes, b = (b + 1) % BufferCount)
            {
                long n = Math.Min(SliceBytes, bytes - offset);
                // The buffer's last slice has reached the device.
                CudaException.Check(CudaDriver.cuEventSynchronize(_copied[b]), "cuEventSynchronize");
                HostCopy(source + offset, (byte*)_buffers[b], n);
                CudaException.Check(CudaDriver.cuMemcpyHtoDAsync(destination + (ulong)offset, (void*)_buffers[b], (nuint)n, IntPtr.Zero), "cuMemcpyHtoDAsync");
                CudaException.Check(CudaDriver.cuEventRecord(_copied[b], IntPtr.Zero), "cuEventRecord");
            }
            _next = b;
        }
    }

    /// <summary>Copies <paramref name="bytes"/> from the device address <paramref name="source"/> into <paramref name="destination"/>, after the work queued before.</summary>
    public void Download(byte* destination, ulong source, long bytes) => Download(source, [((nint)destination, bytes)]);

    /// <summary>
    /// Copies consecutive device bytes from <paramref name="source"/> into <paramref name="parts"/> in turn (each its
    /// length), after the work queued before: the rows of a chunk's output into the host states' rows, one pipeline
    /// of slices for all of them rather than one wait per row.
    /// </summary>
    public void Download(ulong source, ReadOnlySpan<(nint Destination, long Bytes)> parts)
    {
        var slices = new List<(nint To, long From, long Bytes)>();
        long at = 0;
        foreach (var (destination, bytes) in parts)
        {
            for (long offset = 0; offset < bytes; offset += SliceBytes)
                slices.Add((destination + (nint)offset, at + offset, Math.Min(SliceBytes, bytes - offset)));
            at += bytes;
        }
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // Slice i is queued before slice i − 1 is copied out of its buffer, so the copy engine and the host overlap.
            for (int i = 0; i <= slices.Count; i++)
            {
                if (i < slices.Count)
                {
                    int b = i % BufferCount;
                    CudaException.Check(CudaDriver.cuMemcpyDtoHAsync((void*)_buffers[b], source + (ulong)slices[i].From, (nuint)slices[i].Bytes, IntPtr.Zero), "cuMemcpyDtoHAsync");
                    CudaException.Check(CudaDriver.cuEventRecord(_copied[b], IntPtr.Zero), "cuEventRecord");
                }
                if (i > 0)
                {
                    int b = (i - 1) % BufferCount;
                    CudaException.Check(CudaDriver.cuEventSynchronize(_copied[b]), "cuEventSynchronize");
                    HostCopy((byte*)_buffers[b], (byte*)slices[i - 1].To, slices[i - 1].Bytes);
                }
            }
        }
    }

    /// <summary>A slice's host copy, in parts on the pool's threads: one thread's memcpy is about the PCIe link's speed.</summary>
    private static void HostCopy(byte* from, byte* to, long bytes)
    {
        if (bytes < SliceBytes / 2)
        {
            Buffer.MemoryCopy(from, to, bytes, bytes);
            return;
        }
        long part = (bytes / HostCopyParts + 63) & ~63L;
        nint f = (nint)from, t = (nint)to;
        Parallel.For(0, HostCopyParts, p =>
        {
            long start = p * part, n = Math.Min(part, bytes - start);
            if (n > 0)
                Buffer.MemoryCopy((byte*)f + start, (byte*)t + start, n, n);
        });
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            _context.MakeCurrent();
            for (int i = 0; i < BufferCount; i++)
            {
                if (_copied[i] != IntPtr.Zero)
                {
                    CudaDriver.cuEventSynchronize(_copied[i]);
                    CudaDriver.cuEventDestroy(_copied[i]);
                }
                if (_buffers[i] != IntPtr.Zero)
                    CudaDriver.cuMemFreeHost(_buffers[i]);
            }
        }
    }
}
