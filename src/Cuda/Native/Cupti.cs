using System.Runtime.InteropServices;

namespace Converter.Cuda.Native;

/// <summary>
/// The CUPTI activity API calls we use (cupti_activity.h, CUDA 12–13), by P/Invoke: what the GPU ran and when, recorded
/// by the driver into buffers we hand it. Every call returns a CUptiResult; 0 is success.
/// </summary>
internal static unsafe partial class Cupti
{
    internal const int Success = 0;

    /// <summary>CUPTI_ERROR_MAX_LIMIT_REACHED: <see cref="cuptiActivityGetNextRecord"/> past a buffer's last record.</summary>
    internal const int EndOfBuffer = 12;

    /// <summary>CUpti_ActivityKind values (cupti_activity.h).</summary>
    internal const int KindMemcpy = 1, KindMemset = 2, KindDriver = 4, KindRuntime = 5, KindConcurrentKernel = 10;

    /// <summary>CUPTI_CB_DOMAIN_DRIVER_API and _RUNTIME_API (cupti_callbacks.h): the domains of an API record's callback id.</summary>
    internal const int DomainDriverApi = 1, DomainRuntimeApi = 2;

    // Record layouts (PACKED_ALIGNMENT structs, so no padding): CUpti_ActivityKernel10, CUpti_ActivityMemcpy6 and
    // CUpti_ActivityMemset4 all hold start and end (ns) at bytes 16 and 24; the kernel's correlation id at 92 and its
    // name at 104, a copy's and a fill's correlation id at 44; CUpti_ActivityAPI holds cbid at 4, start and end at 8
    // and 16, the calling thread at 28 and the correlation id at 32.
    internal const int StartOffset = 16, EndOffset = 24;
    internal const int KernelCorrelationOffset = 92, KernelNameOffset = 104;
    internal const int CopyKindOffset = 4, CopyBytesOffset = 8, CopyCorrelationOffset = 44;
    internal const int ApiCallbackOffset = 4, ApiStartOffset = 8, ApiEndOffset = 16, ApiThreadOffset = 28, ApiCorrelationOffset = 32;

    [LibraryImport(CudaLibraries.Cupti)] internal static partial int cuptiActivityEnable(int kind);
    [LibraryImport(CudaLibraries.Cupti)] internal static partial int cuptiActivityDisable(int kind);
    [LibraryImport(CudaLibraries.Cupti)] internal static partial int cuptiActivityFlushAll(uint flag);
    [LibraryImport(CudaLibraries.Cupti)] internal static partial int cuptiActivityGetNextRecord(byte* buffer, nuint validBytes, ref byte* record);
    [LibraryImport(CudaLibraries.Cupti)] internal static partial int cuptiActivityGetNumDroppedRecords(IntPtr context, uint streamId, out nuint dropped);
    [LibraryImport(CudaLibraries.Cupti)]
    internal static partial int cuptiActivityRegisterCallbacks(
        delegate* unmanaged<byte**, nuint*, nuint*, void> requested, delegate* unmanaged<IntPtr, uint, byte*, nuint, nuint, void> completed);
    [LibraryImport(CudaLibraries.Cupti)] internal static partial int cuptiGetTimestamp(out ulong timestamp);
    [LibraryImport(CudaLibraries.Cupti)] internal static partial int cuptiGetCallbackName(int domain, uint callbackId, out byte* name);
    [LibraryImport(CudaLibraries.Cupti)] internal static partial int cuptiGetResultString(int result, out byte* text);

    /// <summary>Throws with CUPTI's own words for a failed call.</summary>
    internal static void Check(int result, string call)
    {
        if (result == Success)
            return;
        string text = cuptiGetResultString(result, out var words) == Success && words is not null ? Marshal.PtrToStringUTF8((IntPtr)words) ?? "" : "";
        throw new CudaException($"{call} failed: CUPTI error {result}{(text.Length > 0 ? $" ({text})" : "")}");
    }
}
