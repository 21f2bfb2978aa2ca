using Converter.Formats.IO;

namespace Converter.TestSupport;

/// <summary>
/// Tests of sizes past 2 GiB, in category <see cref="Category"/>: they run in the default suite (each takes seconds),
/// `--filter TestCategory!=Large` leaves them out, and each skips with the reason on a machine without the memory or
/// disk it needs instead of failing there. They run one at a time across test processes (dotnet test runs the test
/// assemblies side by side), so two of them cannot both see enough free memory and then both take it.
/// </summary>
public static class LargeTests
{
    public const string Category = "Large";

    private static readonly TimeSpan GateTimeout = TimeSpan.FromMinutes(15);

    /// <summary>
    /// Waits until no other large test runs, then skips the test unless <paramref name="memoryBytes"/> of memory and
    /// <paramref name="diskBytes"/> under <paramref name="directory"/> are free; dispose the result when the test ends.
    /// </summary>
    public static IDisposable Require(long memoryBytes, long diskBytes, string directory)
    {
        var gate = new Gate(TakeGate());
        long memory = MachineResources.AvailableMemoryBytes(), disk = MachineResources.FreeDiskBytes(directory);
        if (memory >= memoryBytes && disk >= diskBytes)
            return gate;
        gate.Dispose();
        NUnit.Framework.Assert.Ignore(memory < memoryBytes
            ? $"needs {memoryBytes >> 20} MiB of free memory, {memory >> 20} MiB available"
            : $"needs {diskBytes >> 20} MiB of free disk under {directory}, {disk >> 20} MiB free");
        return gate;
    }

    /// <summary>
    /// Held for one large test. On release the process's garbage goes back to the system first (an aggressive full GC
    /// decommits the freed heap), so the next large test, maybe in another test process, sees that memory as free.
    /// </summary>
    private sealed class Gate(FileStream file) : IDisposable
    {
        public void Dispose()
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            file.Dispose();
        }
    }

    /// <summary>An exclusive lock on a file in the temp folder (FileShare.None takes an flock on Linux, so it holds across processes).</summary>
    private static FileStream TakeGate()
    {
        var path = Path.Combine(Path.GetTempPath(), "trellis-large-tests.lock");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (clock.Elapsed < GateTimeout)
            {
                Thread.Sleep(250);
            }
            catch (IOException)
            {
                NUnit.Framework.Assert.Ignore($"another large test held {path} for {GateTimeout.TotalMinutes} minutes");
            }
        }
    }
}
