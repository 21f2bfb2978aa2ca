using Converter.Cuda.Native;

namespace Converter.Cuda;

/// <summary>
/// A mark in the default stream's work (cuEventRecord): recorded after some launches and waited on later, so a thread
/// that queues work without waiting can bound how far it runs ahead of the GPU.
/// </summary>
public sealed class CudaEvent : IDisposable
{
    // CU_EVENT_DISABLE_TIMING: these marks are only waited on, and untimed events record and wait faster.
    private const uint DisableTiming = 2;

    private readonly CudaContext _context;
    private IntPtr _event;

    private CudaEvent(CudaContext context, IntPtr handle)
    {
        _context = context;
        _event = handle;
    }

    /// <summary>Marks the work queued so far on the default stream.</summary>
    public static CudaEvent Record(CudaContext context)
    {
        context.MakeCurrent();
        CudaException.Check(CudaDriver.cuEventCreate(out var handle, DisableTiming), "cuEventCreate");
        var mark = new CudaEvent(context, handle);
        try
        {
            CudaException.Check(CudaDriver.cuEventRecord(handle, IntPtr.Zero), "cuEventRecord");
        }
        catch
        {
            mark.Dispose();
            throw;
        }
        return mark;
    }

    /// <summary>Waits until the GPU has finished the work queued before the mark.</summary>
    public void Synchronize()
    {
        ObjectDisposedException.ThrowIf(_event == IntPtr.Zero, this);
        _context.MakeCurrent();
        CudaException.Check(CudaDriver.cuEventSynchronize(_event), "cuEventSynchronize");
    }

    public void Dispose()
    {
        if (_event == IntPtr.Zero)
            return;
        _context.MakeCurrent();
        CudaDriver.cuEventDestroy(_event);
        _event = IntPtr.Zero;
    }
}
