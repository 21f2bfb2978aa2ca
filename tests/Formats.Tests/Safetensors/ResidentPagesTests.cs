using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Safetensors;

/// <summary>
/// Pages of a mapped checkpoint that were read leave the process's resident memory when released, and read the same
/// afterwards (a converter reads each weight once; a whole llama-3-8b's mapped pages were 13 GiB of its peak RSS).
/// </summary>
[TestFixture, NonParallelizable]
public class ResidentPagesTests
{
    [Test]
    public void ReleasedPagesLeaveTheResidentSetAndReadTheSame()
    {
        if (!OperatingSystem.IsLinux())
            Assert.Ignore("madvise is Linux's");
        using var dir = new TempDirectory();
        var path = WriteTensor(dir);
        using var file = SafetensorsFile.Open(path);
        double before = Sum(file);
        long touched = ResidentBytes();
        file.ReleaseResidentPages();
        long released = ResidentBytes();
        TestContext.Out.WriteLine($"resident {touched >> 20} MiB after reading, {released >> 20} MiB after releasing");
        Assert.That(touched - released, Is.GreaterThan(48L << 20), "most of the 64 MiB read leave the resident set");
        Assert.That(Sum(file), Is.EqualTo(before), "a later read maps the same bytes again");
    }

    [Test]
    public void ACopiedTensorLeavesNoResidentPagesBehind()
    {
        if (!OperatingSystem.IsLinux())
            Assert.Ignore("madvise is Linux's");
        using var dir = new TempDirectory();
        var path = WriteTensor(dir);
        using var file = SafetensorsFile.Open(path);
        long before = ResidentBytes();
        var copy = new ShardedSafetensorsWriter(1L << 40);
        copy.AddModule([PendingTensor.CopyOf(file, "w")]);
        Directory.CreateDirectory(dir.File("out"));
        copy.Write(dir.File("out"));
        long after = ResidentBytes();
        TestContext.Out.WriteLine($"resident {before >> 20} MiB before the copy, {after >> 20} MiB after");
        Assert.That(after - before, Is.LessThan(16L << 20), "the 64 MiB read by the copy are not left resident");
        using var written = SafetensorsFile.Open(Path.Combine(dir.File("out"), CheckpointFiles.SingleFile));
        Assert.That(Sum(written), Is.EqualTo(Sum(file)), "the copy has the same bytes");
    }

    /// <summary>Reads every byte of the tensor (so its pages are resident) and sums them.</summary>
    private static double Sum(SafetensorsFile file)
    {
        var bytes = file.RawBytes("w");
        double sum = 0;
        for (int i = 0; i < bytes.Length; i += 64)
            sum += bytes[i];
        return sum;
    }

    /// <summary>A file of one 64 MiB float32 tensor "w".</summary>
    private static string WriteTensor(TempDirectory dir)
    {
        const int values = 16 << 20;
        var path = dir.File("resident.safetensors");
        var data = new float[values];
        for (int i = 0; i < values; i++)
            data[i] = i % 9973;
        var writer = new SafetensorsWriter();
        writer.AddFloat32("w", [values / 1024, 1024], data, DType.F32);
        writer.Write(path);
        return path;
    }

    /// <summary>VmRSS of /proc/self/status.</summary>
    private static long ResidentBytes()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }
}
