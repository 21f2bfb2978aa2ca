using System.Runtime.InteropServices;

namespace Converter.Formats.Safetensors;

/// <summary>madvise(MADV_DONTNEED) on a read-only file mapping: its pages leave the process's resident set and stay in the page cache.</summary>
internal static unsafe partial class MappedPages
{
    private const int MadviseDontNeed = 4;

    /// <summary>Releases [start, start + length) on Linux (start page-aligned); elsewhere, or where libc has no madvise, does nothing.</summary>
    public static void Release(byte* start, nuint length)
    {
        if (!OperatingSystem.IsLinux() || length == 0)
            return;
        try
        {
            // A failure (EINVAL, ENOMEM) costs only the memory this would have released; the mapping stays valid.
            _ = madvise(start, length, MadviseDontNeed);
        }
        catch (DllNotFoundException)
        {
        }
        catch (EntryPointNotFoundException)
        {
        }
    }

    [LibraryImport("libc.so.6")]
    private static partial int madvise(void* address, nuint length, int advice);
}
