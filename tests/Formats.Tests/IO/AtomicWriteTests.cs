using Converter.Formats.IO;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Formats.Tests.IO;

/// <summary>A failed write leaves an existing target untouched and no temp file behind; a good one replaces it.</summary>
public class AtomicWriteTests
{
    private static string[] Entries(TempDirectory dir) => Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName).ToArray()!;

    [Test]
    public void FailingCallbackKeepsTheOldFile()
    {
        using var dir = new TempDirectory();
        var path = dir.File("config.json");
        File.WriteAllText(path, "old");

        Assert.Throws<IOException>(() => AtomicFile.Write(path, s =>
        {
            s.Write("partial"u8);
            throw new IOException("disk full");
        }));

        Assert.That(File.ReadAllText(path), Is.EqualTo("old"));
        Assert.That(Entries(dir), Is.EqualTo(new[] { "config.json" }));
    }

    [Test]
    public void SuccessfulWriteReplacesTheFileAndLeavesNoTemp()
    {
        using var dir = new TempDirectory();
        var path = dir.File("config.json");
        File.WriteAllText(path, "old");
        AtomicFile.WriteAllText(path, "new");
        Assert.That(File.ReadAllText(path), Is.EqualTo("new"));
        Assert.That(Entries(dir), Is.EqualTo(new[] { "config.json" }));
    }

    [Test]
    public void ThrowingTensorProducerKeepsTheOldSafetensorsFile()
    {
        using var dir = new TempDirectory();
        var path = dir.File("model.safetensors");
        var good = new SafetensorsWriter();
        good.AddFloat32("w", [2], [1f, 2f]);
        good.Write(path);
        var before = File.ReadAllBytes(path);

        var bad = new SafetensorsWriter();
        bad.AddFloat32("w", [2], [3f, 4f]);
        bad.Add(PendingTensor.FromProducer("late", DType.F32, [1024], s =>
        {
            s.Write(new byte[100]);
            throw new InvalidDataException("source went away");
        }));
        Assert.Throws<InvalidDataException>(() => bad.Write(path));

        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.That(Entries(dir), Is.EqualTo(new[] { "model.safetensors" }));
    }

    [Test]
    public void ProducerWritingTheWrongByteCountFailsWithoutAFile()
    {
        using var dir = new TempDirectory();
        var path = dir.File("model.safetensors");
        var writer = new SafetensorsWriter();
        writer.Add(PendingTensor.FromProducer("short", DType.F32, [4], s => s.Write(new byte[12])));

        var e = Assert.Throws<InvalidOperationException>(() => writer.Write(path));
        Assert.That(e!.Message, Does.Contain("'short'").And.Contain("12 bytes").And.Contain("16"));
        Assert.That(Entries(dir), Is.Empty);
    }
}
