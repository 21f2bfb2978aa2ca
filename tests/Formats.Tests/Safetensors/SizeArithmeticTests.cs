using Converter.Formats.IO;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Safetensors;

/// <summary>
/// The size computations of the safetensors paths at sizes past 2^31 elements and bytes, without allocating them:
/// windows, byte lengths, offsets in a header, windows of a file's map, and the machine figures they are checked against.
/// </summary>
public class SizeArithmeticTests
{
    /// <summary>A 70B's calibration state at 250 × 2048 tokens: 4.2G float32 values, 17 GB.</summary>
    private const long StateValues = 250L * 2048 * 8192;

    [Test]
    public void WindowsCoverEveryElementOnceInPiecesAnIntHolds()
    {
        long next = 0, windows = 0;
        foreach (var (first, count) in ElementWindows.Over(StateValues, sizeof(float)))
        {
            Assert.That(first, Is.EqualTo(next));
            Assert.That((long)count * sizeof(float), Is.InRange(1, ElementWindows.DefaultBytes));
            next = first + count;
            windows++;
        }
        Assert.That(next, Is.EqualTo(StateValues));
        Assert.That(windows, Is.EqualTo(StateValues * sizeof(float) / ElementWindows.DefaultBytes));
    }

    [TestCase(0L, 4, 16, new long[0])]
    [TestCase(5L, 4, 16, new long[] { 0, 4 })]
    [TestCase(8L, 4, 16, new long[] { 0, 4 })]
    [TestCase(3L, 8, 4, new long[] { 0, 1, 2 })]
    public void WindowsHoldAtLeastOneElementAndEndWithTheRemainder(long elements, int size, int window, long[] firsts)
    {
        var all = ElementWindows.Over(elements, size, window).ToList();
        Assert.That(all.Select(w => w.First), Is.EqualTo(firsts));
        Assert.That(all.Sum(w => (long)w.Count), Is.EqualTo(elements));
    }

    [Test]
    public void ByteLengthsOfShapesPast2GiBAreExactAndOverflowIsAnError()
    {
        var state = PendingTensor.FromProducer("hidden", DType.F32, [250 * 2048, 8192], _ => { });
        Assert.That(state.ElementCount, Is.EqualTo(StateValues));
        Assert.That(state.ByteLength, Is.EqualTo(StateValues * 4));
        var embedding = PendingTensor.FromProducer("embed", DType.BF16, [128256, 8192], _ => { });
        Assert.That(embedding.ByteLength, Is.EqualTo(2_101_346_304L));
        Assert.Throws<OverflowException>(() => PendingTensor.FromProducer("huge", DType.F32, [1L << 31, 1L << 31], _ => { }));
    }

    [Test]
    public void HeaderOffsetsPast2GiBParseToAbsolutePositions()
    {
        // A 70B's bf16 embedding and head, back to back: the head starts past 2^31 bytes into the data section.
        const long embed = 128256L * 8192 * 2;
        string Entry(string name, long begin) => $"\"{name}\":{{\"dtype\":\"BF16\",\"shape\":[128256,8192],\"data_offsets\":[{begin},{begin + embed}]}}";
        var json = "{" + Entry("a", 0) + "," + Entry("b", embed) + "}";
        var bytes = System.Text.Encoding.UTF8.GetBytes(json);
        var header = SafetensorsHeader.Parse("x.safetensors", bytes, 2 * embed);
        var b = header.Tensors[1];
        Assert.That(b.DataOffset, Is.EqualTo(8 + bytes.Length + embed));
        Assert.That(b.ByteLength, Is.EqualTo(embed));
        Assert.That(b.ElementCount, Is.EqualTo(128256L * 8192));
    }

    [Test]
    public void WindowsOutsideATensorAreRefused()
    {
        using var dir = new TempDirectory();
        var path = RawSafetensors.Write(dir, "w.safetensors", """{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 16);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.RawBytes("w", 12, 4).Length, Is.EqualTo(4));
        Assert.That(file.RawBytes("w", 16, 0).Length, Is.EqualTo(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => file.RawBytes("w", 13, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => file.RawBytes("w", -1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => file.RawBytes("w", long.MaxValue, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => file.ReadFloat32("w", 2, new float[3]));
    }

    [Test]
    public void MemAvailableIsReadInBytes()
    {
        const string meminfo = "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   23000000 kB\nBuffers: 12 kB\n";
        Assert.That(MachineResources.ParseMemAvailable(meminfo), Is.EqualTo(23_000_000L * 1024));
        Assert.That(MachineResources.ParseMemAvailable("MemTotal: 1 kB\n"), Is.Null);
        Assert.That(MachineResources.AvailableMemoryBytes(), Is.GreaterThan(0));
        Assert.That(MachineResources.FreeDiskBytes(Path.Combine(Path.GetTempPath(), "not", "there", "yet")), Is.GreaterThan(0));
    }

    [Test]
    public void MinorFaultsAreTheTenthStatFieldAfterTheName()
    {
        // A command name with spaces and a parenthesis must not shift the fields.
        const string stat = "18168 (my (odd) cmd) R 18125 18125 16689 0 -1 4194304 123 0 7 0 0 0 0 0 20 0 1 0 6727268 3133440 358\n";
        Assert.That(MachineResources.ParseMinorFaults(stat), Is.EqualTo(123));
        Assert.That(MachineResources.ParseMinorFaults("18168 (cat R 1"), Is.Null);
        if (OperatingSystem.IsLinux())
        {
            // Fresh pages from the C allocator (64 MiB is past glibc's mmap threshold): a managed array may reuse memory
            // the GC had already touched for an earlier test in this process, which faults nothing (CI, session 30).
            long before = MachineResources.MinorPageFaults()!.Value;
            const int bytes = 64 << 20;
            var touched = System.Runtime.InteropServices.Marshal.AllocHGlobal(bytes);
            try
            {
                for (int i = 0; i < bytes; i += 4096)
                    System.Runtime.InteropServices.Marshal.WriteByte(touched, i, 1);
            }
            finally
            {
                System.Runtime.InteropServices.Marshal.FreeHGlobal(touched);
            }
            Assert.That(MachineResources.MinorPageFaults() - before, Is.GreaterThan(0), "64 MiB touched once faults its pages in (4 KiB or huge pages)");
        }
    }
}
