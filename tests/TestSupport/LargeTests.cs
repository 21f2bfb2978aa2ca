using Converter.Formats.IO;

namespace Converter.TestSupport;

/// <summary>
/// Tests of sizes past 2 GiB, in category <see cref="Category"/>: they run in the default suite (each takes seconds),
/// `--filter TestCategory!=Large` leaves them out, and each skips with the reason on a machine without the memory or
/// disk it needs instead of failing there.
/// </summary>
public static class LargeTests
{
    public const string Category = "Large";

    /// <summary>Skips the test unless <paramref name="memoryBytes"/> of memory and <paramref name="diskBytes"/> under <paramref name="directory"/> are free.</summary>
    public static void Require(long memoryBytes, long diskBytes, string directory)
    {
        long memory = MachineResources.AvailableMemoryBytes();
        if (memory < memoryBytes)
            NUnit.Framework.Assert.Ignore($"needs {memoryBytes >> 20} MiB of free memory, {memory >> 20} MiB available");
        long disk = MachineResources.FreeDiskBytes(directory);
        if (disk < diskBytes)
            NUnit.Framework.Assert.Ignore($"needs {diskBytes >> 20} MiB of free disk under {directory}, {disk >> 20} MiB free");
    }
}
