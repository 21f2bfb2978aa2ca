namespace Converter.Formats.IO;

/// <summary>
/// What this machine has free for a job: host memory (the kernel's MemAvailable and the GC's limit) and disk under a
/// path. Read at the edge of anything that sizes work against them (convert's estimate, the tests past 2 GiB).
/// </summary>
public static class MachineResources
{
    /// <summary>
    /// This process's peak resident memory so far (VmHWM), which convert logs per module so that a log shows which one
    /// set the peak: the host estimate counts live data, the peak also what the GC has not collected or keeps mapped.
    /// </summary>
    public static long PeakResidentBytes()
    {
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        return process.PeakWorkingSet64;
    }

    /// <summary>
    /// Minor page faults of this process so far (/proc/self/stat's minflt), or null off Linux. Convert logs them per
    /// module: every first touch of memory the kernel had to hand out fresh (zero-filled, 4 KiB at a time) is one, and
    /// they cost host time on the critical path of a GPU run (docs/benchmarks.md, session 24).
    /// </summary>
    public static long? MinorPageFaults()
    {
        try
        {
            return ParseMinorFaults(File.ReadAllText("/proc/self/stat"));
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>minflt (the 10th field) of a /proc/PID/stat line, counted after the command name's closing parenthesis (the name may hold spaces).</summary>
    public static long? ParseMinorFaults(string stat)
    {
        int close = stat.LastIndexOf(')');
        if (close < 0)
            return null;
        // Fields after ")": state (3), ppid, pgrp, session, tty_nr, tpgid, flags, minflt (10).
        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length > 7 && long.TryParse(fields[7], out var faults) ? faults : null;
    }

    /// <summary>
    /// Memory a new job can take: MemAvailable (free memory plus what the kernel reclaims without swapping) and the
    /// GC's limit (a container's), whichever is lower.
    /// </summary>
    public static long AvailableMemoryBytes()
    {
        long limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        try
        {
            if (ParseMemAvailable(File.ReadAllText("/proc/meminfo")) is { } available)
                return Math.Min(available, limit);
        }
        catch (IOException)
        {
            // Not Linux, or no /proc: the GC's view is all there is.
        }
        catch (UnauthorizedAccessException)
        {
        }
        return limit;
    }

    /// <summary>MemAvailable of a /proc/meminfo text in bytes ("MemAvailable:   12345 kB"), or null when absent.</summary>
    public static long? ParseMemAvailable(string meminfo)
    {
        foreach (var line in meminfo.Split('\n'))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 3 && fields[0] == "MemAvailable:" && fields[2] == "kB" && long.TryParse(fields[1], out var kib))
                return kib * 1024;
        }
        return null;
    }

    /// <summary>Free bytes of the file system that holds <paramref name="path"/> or, if it does not exist yet, its nearest existing parent.</summary>
    public static long FreeDiskBytes(string path) => new DriveInfo(ExistingAncestor(path)).AvailableFreeSpace;

    /// <summary>The mount point that holds <paramref name="path"/>: the longest one that is a prefix of it.</summary>
    public static string MountOf(string path)
    {
        var full = ExistingAncestor(path);
        return DriveInfo.GetDrives().Select(d => d.Name)
            .Where(m => full == m || full.StartsWith(m.EndsWith('/') ? m : m + "/", StringComparison.Ordinal))
            .OrderByDescending(m => m.Length).FirstOrDefault() ?? Path.GetPathRoot(full) ?? full;
    }

    private static string ExistingAncestor(string path)
    {
        var dir = Path.GetFullPath(path);
        while (!Directory.Exists(dir) && Path.GetDirectoryName(dir) is { } parent)
            dir = parent;
        return dir;
    }
}
