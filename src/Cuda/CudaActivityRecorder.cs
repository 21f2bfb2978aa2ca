using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Converter.Cuda.Native;

namespace Converter.Cuda;

/// <summary>What a <see cref="DeviceActivity"/> is: work the GPU ran, or a CUDA driver or runtime call a host thread made.</summary>
public enum DeviceActivityKind
{
    Kernel,
    Copy,
    Fill,
    ApiCall,
}

/// <summary>
/// One thing the GPU ran (a kernel, a copy, a fill) or one CUDA driver or runtime call, in seconds on the clock the recorder was
/// started against. <paramref name="Correlation"/> ties a launch's or copy's driver call to the work it queued.
/// </summary>
public readonly record struct DeviceActivity(DeviceActivityKind Kind, string Name, double Start, double End, uint Correlation, uint Thread, long Bytes);

/// <summary>
/// Every kernel, copy and fill the GPU runs, and every driver and runtime call (cuBLAS and cuSOLVER launch through the
/// runtime), recorded through CUPTI's activity API (the
/// measurement `convert --timeline-gpu` adds). nvidia-smi's utilization says only how much of each sample period some
/// kernel ran, and the lent GPU machines have no working Nsight Systems (session 29), so the gaps between kernels, and
/// which host call each one waited on, come from here. CUPTI records into buffers it asks us for and hands back full;
/// their records are parsed at once, so the buffers go back to the native heap. Costs a few microseconds per launch.
/// </summary>
public sealed unsafe class CudaActivityRecorder : IDisposable
{
    /// <summary>The buffer size CUPTI's own samples use; a buffer holds ~50,000 kernel records.</summary>
    private const int BufferBytes = 8 << 20;

    /// <summary>API calls shorter than this are left out unless they queued GPU work (cuCtxSetCurrent before every call, event records).</summary>
    private const double ShortestCall = 5e-6;

    private static readonly int[] Kinds = [Cupti.KindConcurrentKernel, Cupti.KindMemcpy, Cupti.KindMemset, Cupti.KindDriver, Cupti.KindRuntime];

    // CUPTI's buffer callbacks carry no context pointer and its activity state is the process's: one recorder at a time.
    private static CudaActivityRecorder? s_active;

    private readonly ulong _startTimestamp;
    private readonly double _startSeconds;
    private readonly Lock _gate = new();
    private readonly List<DeviceActivity> _records = [];
    private readonly Dictionary<nint, string> _kernelNames = [];
    private readonly Dictionary<(int Domain, uint Id), string> _callNames = [];
    private bool _disposed;

    private CudaActivityRecorder(ulong startTimestamp, double startSeconds)
    {
        _startTimestamp = startTimestamp;
        _startSeconds = startSeconds;
    }

    /// <summary>Records from now; <paramref name="now"/> is the caller's clock at this instant, so records read on it.</summary>
    /// <exception cref="CudaException">CUPTI refused (another profiler holds it, or the driver does not allow it).</exception>
    /// <exception cref="DllNotFoundException">No libcupti.so was found.</exception>
    public static CudaActivityRecorder Start(double now)
    {
        CudaLibraries.EnsureRegistered();
        Cupti.Check(Cupti.cuptiGetTimestamp(out ulong timestamp), "cuptiGetTimestamp");
        var recorder = new CudaActivityRecorder(timestamp, now);
        if (Interlocked.CompareExchange(ref s_active, recorder, null) is not null)
            throw new InvalidOperationException("a CUDA activity recorder is already running in this process");
        try
        {
            Cupti.Check(Cupti.cuptiActivityRegisterCallbacks(&BufferRequested, &BufferCompleted), "cuptiActivityRegisterCallbacks");
            foreach (int kind in Kinds)
                Cupti.Check(Cupti.cuptiActivityEnable(kind), $"cuptiActivityEnable({kind})");
        }
        catch
        {
            recorder.Dispose();
            throw;
        }
        return recorder;
    }

    /// <summary>The records completed since the last call (CUPTI's buffers flushed first), ordered by start.</summary>
    public IReadOnlyList<DeviceActivity> Drain()
    {
        Cupti.Check(Cupti.cuptiActivityFlushAll(0), "cuptiActivityFlushAll");
        List<DeviceActivity> taken;
        lock (_gate)
        {
            taken = [.. _records];
            _records.Clear();
        }
        taken.Sort((a, b) => a.Start.CompareTo(b.Start));
        return taken;
    }

    /// <summary>Records CUPTI dropped for want of buffer space (none expected: a buffer is handed over whenever asked).</summary>
    public long Dropped => Cupti.cuptiActivityGetNumDroppedRecords(IntPtr.Zero, 0, out nuint dropped) == Cupti.Success ? (long)dropped : 0;

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (int kind in Kinds)
            Cupti.cuptiActivityDisable(kind);
        Cupti.cuptiActivityFlushAll(0);
        Interlocked.CompareExchange(ref s_active, null, this);
    }

    private double Seconds(ulong timestamp) => _startSeconds + (long)(timestamp - _startTimestamp) * 1e-9;

    [UnmanagedCallersOnly]
    private static void BufferRequested(byte** buffer, nuint* size, nuint* maxRecords)
    {
        *buffer = (byte*)NativeMemory.AlignedAlloc(BufferBytes, 8);
        *size = BufferBytes;
        *maxRecords = 0;
    }

    [UnmanagedCallersOnly]
    private static void BufferCompleted(IntPtr context, uint streamId, byte* buffer, nuint size, nuint validBytes)
    {
        try
        {
            Volatile.Read(ref s_active)?.Parse(buffer, validBytes);
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    /// <summary>Under the gate: CUPTI's worker thread and a flushing thread may both hand buffers back, and the name caches are shared.</summary>
    private void Parse(byte* buffer, nuint validBytes)
    {
        byte* record = null;
        lock (_gate)
        {
            while (Cupti.cuptiActivityGetNextRecord(buffer, validBytes, ref record) == Cupti.Success)
            {
                if (Read(record) is { } activity)
                    _records.Add(activity);
            }
        }
    }

    private DeviceActivity? Read(byte* r)
    {
        int kind = At<int>(r, 0);
        switch (kind)
        {
            case Cupti.KindConcurrentKernel:
                return new DeviceActivity(DeviceActivityKind.Kernel, KernelName(At<nint>(r, Cupti.KernelNameOffset)),
                    Seconds(At<ulong>(r, Cupti.StartOffset)), Seconds(At<ulong>(r, Cupti.EndOffset)), At<uint>(r, Cupti.KernelCorrelationOffset), 0, 0);
            case Cupti.KindMemcpy:
                return new DeviceActivity(DeviceActivityKind.Copy, CopyName(r[Cupti.CopyKindOffset]),
                    Seconds(At<ulong>(r, Cupti.StartOffset)), Seconds(At<ulong>(r, Cupti.EndOffset)), At<uint>(r, Cupti.CopyCorrelationOffset), 0, (long)At<ulong>(r, Cupti.CopyBytesOffset));
            case Cupti.KindMemset:
                return new DeviceActivity(DeviceActivityKind.Fill, "memset",
                    Seconds(At<ulong>(r, Cupti.StartOffset)), Seconds(At<ulong>(r, Cupti.EndOffset)), At<uint>(r, Cupti.CopyCorrelationOffset), 0, (long)At<ulong>(r, Cupti.CopyBytesOffset));
            case Cupti.KindDriver or Cupti.KindRuntime:
                double start = Seconds(At<ulong>(r, Cupti.ApiStartOffset)), end = Seconds(At<ulong>(r, Cupti.ApiEndOffset));
                string name = CallName(kind == Cupti.KindDriver ? Cupti.DomainDriverApi : Cupti.DomainRuntimeApi, At<uint>(r, Cupti.ApiCallbackOffset));
                if (end - start < ShortestCall && !QueuesWork(name))
                    return null;
                return new DeviceActivity(DeviceActivityKind.ApiCall, name, start, end, At<uint>(r, Cupti.ApiCorrelationOffset), At<uint>(r, Cupti.ApiThreadOffset), 0);
            default:
                return null;
        }
    }

    private static bool QueuesWork(string call) =>
        call.StartsWith("cuLaunch", StringComparison.Ordinal) || call.StartsWith("cuMemcpy", StringComparison.Ordinal) || call.StartsWith("cuMemset", StringComparison.Ordinal)
        || call.StartsWith("cudaLaunch", StringComparison.Ordinal) || call.StartsWith("cudaMemcpy", StringComparison.Ordinal) || call.StartsWith("cudaMemset", StringComparison.Ordinal);

    private static T At<T>(byte* record, int offset) where T : unmanaged => Unsafe.ReadUnaligned<T>(record + offset);

    private string KernelName(nint name)
    {
        if (!_kernelNames.TryGetValue(name, out var text))
            _kernelNames[name] = text = name == 0 ? "kernel" : Marshal.PtrToStringUTF8(name) ?? "kernel";
        return text;
    }

    private string CallName(int domain, uint callbackId)
    {
        if (!_callNames.TryGetValue((domain, callbackId), out var text))
        {
            _callNames[(domain, callbackId)] = text = Cupti.cuptiGetCallbackName(domain, callbackId, out byte* name) == Cupti.Success && name is not null
                ? Marshal.PtrToStringUTF8((IntPtr)name) ?? $"API call {domain}.{callbackId}"
                : $"API call {domain}.{callbackId}";
        }
        return text;
    }

    // CUpti_ActivityMemcpyKind (cupti_activity.h).
    private static string CopyName(byte kind) => kind switch
    {
        1 => "memcpy HtoD",
        2 => "memcpy DtoH",
        8 => "memcpy DtoD",
        9 => "memcpy HtoH",
        10 => "memcpy PtoP",
        _ => $"memcpy kind {kind}",
    };
}
