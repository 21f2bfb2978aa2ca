using System.Collections.Concurrent;
using Converter.Cuda.Native;

namespace Converter.Cuda;

/// <summary>
/// One GPU in use: its primary context, compiled modules and memory. The driver keeps the current context per host
/// thread, so every operation makes it current first; work is issued on the default stream and is ordered.
/// </summary>
public sealed unsafe class CudaContext : IDisposable
{
    private readonly IntPtr _context;
    private readonly KernelCompiler _compiler;
    private readonly ConcurrentDictionary<string, CudaModule> _modules = new();
    private bool _disposed;
    private long _allocated;
    private long _peak;

    private CudaContext(CudaDeviceInfo device, IntPtr context, KernelCompiler compiler)
    {
        Device = device;
        _context = context;
        _compiler = compiler;
        _staging = new(() =>
        {
            MakeCurrent();
            return PinnedStaging.TryCreate(this);
        });
    }

    public CudaDeviceInfo Device { get; }

    /// <summary>Opens GPU <paramref name="ordinal"/>; compiled kernels are cached under <paramref name="cacheDirectory"/>.</summary>
    public static CudaContext Open(int ordinal, string? cacheDirectory = null)
    {
        var devices = CudaDevice.Discover(out var whyNone);
        if (devices.Count == 0)
            throw new CudaException($"cuda:{ordinal} is not available: {whyNone}");
        if (ordinal < 0 || ordinal >= devices.Count)
            throw new CudaException($"cuda:{ordinal} does not exist: the driver reports {devices.Count} GPU(s), cuda:0..cuda:{devices.Count - 1}");
        var info = devices[ordinal];
        CudaException.Check(CudaDriver.cuDevicePrimaryCtxRetain(out var context, ordinal), "cuDevicePrimaryCtxRetain");
        CudaException.Check(CudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        return new CudaContext(info, context, new KernelCompiler(info, cacheDirectory ?? KernelCompiler.DefaultCacheDirectory()));
    }

    /// <summary>Makes this context current on the calling thread.</summary>
    public void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CudaException.Check(CudaDriver.cuCtxSetCurrent(_context), "cuCtxSetCurrent");
    }

    public void Synchronize()
    {
        MakeCurrent();
        CudaException.Check(CudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        CudaException.Check(CudaDriver.cuMemGetInfo(out var free, out var total), "cuMemGetInfo");
        return ((long)free, (long)total);
    }

    /// <summary>
    /// Copies <paramref name="bytes"/> between device addresses, ordered on the default stream like a kernel (a
    /// device-to-device copy does not wait for the host).
    /// </summary>
    public void CopyWithin(ulong destination, ulong source, long bytes)
    {
        MakeCurrent();
        CudaException.Check(CudaDriver.cuMemcpyDtoD(destination, source, (nuint)bytes), "cuMemcpyDtoD");
    }

    /// <summary>
    /// Bytes this context's buffers (<see cref="DeviceBuffer{T}"/>) hold now: what the converter allocated, not the
    /// driver's, cuBLAS's or the compiled modules' memory (nvidia-smi's figure is that much higher).
    /// </summary>
    public long AllocatedBytes => Interlocked.Read(ref _allocated);

    /// <summary>The most <see cref="AllocatedBytes"/> held at once since the last <see cref="ResetPeak"/> (or since the context opened).</summary>
    public long PeakAllocatedBytes => Interlocked.Read(ref _peak);

    /// <summary>Starts a new peak from what is held now, so that a module's own peak can be read at its end.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref _peak, AllocatedBytes);

    /// <summary>Counts an allocation (positive) or a free (negative) of a buffer of this context.</summary>
    internal void Track(long bytes)
    {
        long now = Interlocked.Add(ref _allocated, bytes);
        long peak;
        while (now > (peak = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, peak) != peak)
        {
        }
    }

    /// <summary>
    /// The page-locked buffers large copies go through (<see cref="PinnedStaging"/>), made at the first such copy; null
    /// where page-locked memory cannot be had (copies then go directly).
    /// </summary>
    internal PinnedStaging? Staging => _staging.Value;

    private readonly Lazy<PinnedStaging?> _staging;

    public DeviceBuffer<T> Allocate<T>(long count) where T : unmanaged
    {
        MakeCurrent();
        return new DeviceBuffer<T>(this, count);
    }

    /// <summary>A module compiled from an embedded kernel source with the given defines, compiled once per process (and cached on disk).</summary>
    public CudaModule Module(string source, IReadOnlyDictionary<string, string> defines)
    {
        string key = source + "|" + string.Join(",", defines.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => $"{d.Key}={d.Value}"));
        return _modules.GetOrAdd(key, _ =>
        {
            var cubin = _compiler.Compile(source, defines);
            MakeCurrent();
            return CudaModule.Load(this, cubin, source);
        });
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        foreach (var m in _modules.Values)
            m.Dispose();
        if (_staging.IsValueCreated)
            _staging.Value?.Dispose();
        _disposed = true;
        CudaDriver.cuDevicePrimaryCtxRelease(Device.Ordinal);
    }
}
