using System.Diagnostics;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Safetensors;

/// <summary>
/// A tensor past 2^31 bytes through the writer, the reader and a copy (issue 17: a conversion died at its first
/// checkpoint once a tensor passed 2 GiB). The tensor is given in parts and written a window at a time; nothing holds a
/// second full copy of it except the one whole read that checks ReadFloat32 into a single array.
/// </summary>
[TestFixture, Category(LargeTests.Category), NonParallelizable]
public class LargeTensorTests
{
    /// <summary>2^29 + 2^22 float32 values: 2.16 GB, past int.MaxValue bytes, in parts of 2^26 values and a remainder.</summary>
    private const long Values = (1L << 29) + (1L << 22);

    private const int Cols = 4096;

    private const int PartValues = 1 << 26;

    /// <summary>Exact in float32 and different for neighbouring elements and for elements 2^31 bytes apart.</summary>
    private static float Value(long i) => (float)(i % 1_000_003) - (i >> 27);

    [Test]
    public void ATensorPast2GiBRoundTripsThroughTheWriterTheReaderAndACopy()
    {
        const long bytes = Values * sizeof(float);
        using var gate = LargeTests.Require(memoryBytes: 2 * bytes + (1L << 30), diskBytes: 2 * bytes + (1L << 29), Path.GetTempPath());
        using var dir = new TempDirectory();
        // In a method of its own, so its arrays are garbage when the gate's release collects them.
        RoundTrip(dir);
    }

    private static void RoundTrip(TempDirectory dir)
    {
        const long bytes = Values * sizeof(float);
        var clock = Stopwatch.StartNew();

        var parts = new List<float[]>();
        for (long first = 0; first < Values; first += PartValues)
        {
            var part = new float[Math.Min(PartValues, Values - first)];
            long offset = first;
            Parallel.For(0, part.Length, i => part[i] = Value(offset + i));
            parts.Add(part);
        }
        var path = dir.File("big.safetensors");
        var writer = new SafetensorsWriter();
        writer.Add("before", DType.I32, [3], new[] { 7, 8, 9 });
        writer.Add(PendingTensor.FromFloat32("big", [Values / Cols, Cols], parts.Select(p => (ReadOnlyMemory<float>)p).ToList()));
        writer.AddFloat32("after", [5], [1f, 2f, 3f, 4f, 5f], DType.F16);
        writer.Write(path);
        TestContext.Out.WriteLine($"wrote {bytes >> 20} MiB in {clock.Elapsed.TotalSeconds:F1} s");

        using (var file = SafetensorsFile.Open(path))
        {
            var info = file.Info("big");
            Assert.That(info.ByteLength, Is.EqualTo(bytes).And.GreaterThan(int.MaxValue));
            Assert.That(file.Info("after").DataOffset, Is.GreaterThan(info.DataOffset + int.MaxValue), "a tensor that starts past 2 GiB");
            Assert.That(file.ReadFloat32("after"), Is.EqualTo(new[] { 1f, 2f, 3f, 4f, 5f }));
            Assert.That(file.ReadRaw<int>("before"), Is.EqualTo(new[] { 7, 8, 9 }));
            Assert.Throws<SafetensorsFormatException>(() => file.RawBytes("big"), "one span cannot hold it");

            // Samples at the ends, across the 2^31-byte boundary and at random; each read is a window of the map.
            var rng = new Random(17);
            var starts = new List<long> { 0, int.MaxValue / sizeof(float) - 100, Values - 1000 };
            starts.AddRange(Enumerable.Range(0, 64).Select(_ => rng.NextInt64(Values - 1000)));
            var sample = new float[1000];
            foreach (var start in starts)
            {
                file.ReadFloat32("big", start, sample);
                for (int i = 0; i < sample.Length; i++)
                {
                    if (sample[i] != Value(start + i))
                        Assert.Fail($"element {start + i}: read {sample[i]}, wrote {Value(start + i)}");
                }
            }

            // The whole tensor into one array, as a 70B's embedding or head loads.
            var whole = file.ReadFloat32("big");
            for (int p = 0; p < parts.Count; p++)
                Assert.That(whole.AsSpan(p * PartValues, parts[p].Length).SequenceEqual(parts[p]), Is.True, $"part {p}");
        }
        parts.Clear();

        // A copy as the output compiler makes one (a 70B's 2.1 GB embedding from its module file into a shard).
        var copyPath = dir.File("copy.safetensors");
        using (var source = SafetensorsFile.Open(path))
        {
            var copy = new SafetensorsWriter();
            copy.Add(PendingTensor.CopyOf(source, "big"));
            copy.Write(copyPath);
            using var copied = SafetensorsFile.Open(copyPath);
            foreach (var (start, count) in ElementWindows.Over(bytes, 1, 64 << 20))
            {
                if (!copied.RawBytes("big", start, count).SequenceEqual(source.RawBytes("big", start, count)))
                    Assert.Fail($"the copy differs in bytes [{start}, {start + count})");
            }
        }
        TestContext.Out.WriteLine($"write, reads and copy: {clock.Elapsed.TotalSeconds:F1} s");
    }
}
