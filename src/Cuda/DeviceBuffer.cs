using Converter.Cuda.Native;

namespace Converter.Cuda;

/// <summary>A typed allocation in GPU memory (cuMemAlloc), copied to and from host spans.</summary>
public sealed unsafe class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    private readonly CudaContext _context;

    internal DeviceBuffer(CudaContext context, long count)
    {
        _context = context;
        Count = count;
        long bytes = Math.Max(1, count) * sizeof(T);
        int status = CudaDriver.cuMemAlloc(out var pointer, (nuint)bytes);
        if (status != 0)
        {
            var (free, total) = context.MemoryInfo();
            throw new CudaException($"cuMemAlloc of {bytes / (1 << 20)} MiB failed: {CudaException.DriverErrorName(status)} ({free / (1 << 20)} of {total / (1 << 20)} MiB free)");
        }
        Pointer = pointer;
        _bytes = bytes;
        context.Track(bytes);
    }

    private readonly long _bytes;

    public long Count { get; }
    public ulong Pointer { get; private set; }
    public long Bytes => Count * sizeof(T);

    /// <summary>
    /// Copies <paramref name="source"/> to the buffer from value <paramref name="offset"/>, ordered on the default stream
    /// after the work queued before; large copies through the context's page-locked buffers (<see cref="PinnedStaging"/>).
    /// </summary>
    public void CopyFrom(ReadOnlySpan<T> source, long offset = 0)
    {
        long bytes = (long)source.Length * sizeof(T);
        if (bytes < PinnedStaging.ThresholdBytes || _context.Staging is not { } staging)
        {
            CopyFromDirect(source, offset);
            return;
        }
        CheckRange(offset, source.Length);
        _context.MakeCurrent();
        fixed (T* p = source)
            staging.Upload(Pointer + (ulong)(offset * sizeof(T)), (byte*)p, bytes);
    }

    /// <summary>Copies <paramref name="destination"/>'s length of values from value <paramref name="offset"/>, after the work queued before.</summary>
    public void CopyTo(Span<T> destination, long offset = 0)
    {
        long bytes = (long)destination.Length * sizeof(T);
        if (bytes < PinnedStaging.ThresholdBytes || _context.Staging is not { } staging)
        {
            CopyToDirect(destination, offset);
            return;
        }
        CheckRange(offset, destination.Length);
        _context.MakeCurrent();
        fixed (T* p = destination)
            staging.Download((byte*)p, Pointer + (ulong)(offset * sizeof(T)), bytes);
    }

    /// <summary>
    /// Copies consecutive values from value <paramref name="offset"/> into each of <paramref name="destinations"/> in
    /// turn, after the work queued before; through the page-locked buffers as one pipeline when they are large.
    /// </summary>
    public void CopyTo(IReadOnlyList<Memory<T>> destinations, long offset)
    {
        long values = destinations.Sum(d => (long)d.Length);
        if (values * sizeof(T) < PinnedStaging.ThresholdBytes || _context.Staging is not { } staging)
        {
            foreach (var destination in destinations)
            {
                CopyToDirect(destination.Span, offset);
                offset += destination.Length;
            }
            return;
        }
        CheckRange(offset, values);
        _context.MakeCurrent();
        var pins = destinations.Select(d => d.Pin()).ToArray();
        try
        {
            var parts = new (nint, long)[pins.Length];
            for (int i = 0; i < pins.Length; i++)
                parts[i] = ((nint)pins[i].Pointer, (long)destinations[i].Length * sizeof(T));
            staging.Download(Pointer + (ulong)(offset * sizeof(T)), parts);
        }
        finally
        {
            foreach (var pin in pins)
                pin.Dispose();
        }
    }

    /// <summary><see cref="CopyFrom"/> by the driver's own copy from pageable memory (small copies; tests compare the two).</summary>
    internal void CopyFromDirect(ReadOnlySpan<T> source, long offset = 0)
    {
        CheckRange(offset, source.Length);
        _context.MakeCurrent();
        fixed (T* p = source)
            CudaException.Check(CudaDriver.cuMemcpyHtoD(Pointer + (ulong)(offset * sizeof(T)), p, (nuint)source.Length * (nuint)sizeof(T)), "cuMemcpyHtoD");
    }

    /// <summary><see cref="CopyTo"/> by the driver's own copy into pageable memory.</summary>
    internal void CopyToDirect(Span<T> destination, long offset = 0)
    {
        CheckRange(offset, destination.Length);
        _context.MakeCurrent();
        fixed (T* p = destination)
            CudaException.Check(CudaDriver.cuMemcpyDtoH(p, Pointer + (ulong)(offset * sizeof(T)), (nuint)destination.Length * (nuint)sizeof(T)), "cuMemcpyDtoH");
    }

    /// <summary>
    /// Columns [<paramref name="column"/>, +<paramref name="width"/>) of the row-major host matrix <paramref name="source"/>
    /// (<paramref name="height"/> rows of <paramref name="pitch"/> values) into this buffer, dense (height × width), in one
    /// strided copy.
    /// </summary>
    public void CopyColumnsFrom(ReadOnlySpan<T> source, int pitch, int height, int column, int width)
    {
        if (column < 0 || width < 0 || column + width > pitch || source.Length < (long)height * pitch)
            throw new ArgumentOutOfRangeException(nameof(column), $"columns [{column}, {column + width}) of a {height}×{pitch} matrix");
        CheckRange(0, (long)height * width);
        if (height == 0 || width == 0)
            return;
        _context.MakeCurrent();
        fixed (T* p = source)
        {
            var copy = new Memcpy2D
            {
                SrcMemoryType = Memcpy2D.Host,
                SrcHost = (nint)(p + column),
                SrcPitch = (nuint)pitch * (nuint)sizeof(T),
                DstMemoryType = Memcpy2D.Device,
                DstDevice = Pointer,
                DstPitch = (nuint)width * (nuint)sizeof(T),
                WidthInBytes = (nuint)width * (nuint)sizeof(T),
                Height = (nuint)height,
            };
            CudaException.Check(CudaDriver.cuMemcpy2D(&copy), "cuMemcpy2D");
        }
    }

    /// <summary>Sets every byte to <paramref name="value"/> (tests poison outputs with this).</summary>
    public void Fill(byte value)
    {
        _context.MakeCurrent();
        CudaException.Check(CudaDriver.cuMemsetD8(Pointer, value, (nuint)Bytes), "cuMemsetD8");
    }

    private void CheckRange(long offset, long length)
    {
        if (offset < 0 || offset + length > Count)
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, {offset + length}) is outside a buffer of {Count}");
    }

    public void Dispose()
    {
        if (Pointer == 0)
            return;
        _context.MakeCurrent();
        CudaDriver.cuMemFree(Pointer);
        Pointer = 0;
        _context.Track(-_bytes);
    }
}
