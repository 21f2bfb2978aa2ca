using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Safetensors;

/// <summary>Every malformed input is a <see cref="SafetensorsFormatException"/> whose message names the file and the problem.</summary>
public class CorruptFileTests
{
    private const string FileName = "bad-model.safetensors";

    private static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    [Test]
    public void AWellFormedControlFileOpens()
    {
        using var dir = new TempDirectory();
        using var file = SafetensorsFile.Open(RawSafetensors.Write(dir, FileName, "{" + Entry("a", "F32", "[2]", 0, 8) + "}", 8));
        Assert.That(file.TensorNames, Is.EqualTo(new[] { "a" }));
    }

    // Each case: header text, data-section size, and the words the message must contain.
    private static IEnumerable<TestCaseData> BadHeaders()
    {
        TestCaseData Case(string label, string header, int dataBytes, string expect) =>
            new TestCaseData(header, dataBytes, expect).SetName($"BadHeader_{label}");

        yield return Case("InvalidJson", "{\"a\": {", 0, "not valid JSON");
        yield return Case("NotAnObject", "[1, 2]", 0, "expected an object");
        yield return Case("EntryNotObject", "{\"a\": 3}", 0, "tensor 'a'");
        yield return Case("MissingDtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing dtype");
        yield return Case("DtypeNotString", "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype is a JSON Number");
        yield return Case("UnknownDtype", "{" + Entry("a", "F8_E5M2", "[2]", 0, 2) + "}", 2, "unknown or unsupported dtype 'F8_E5M2'");
        yield return Case("LowercaseDtype", "{" + Entry("a", "f32", "[2]", 0, 8) + "}", 8, "dtype 'f32'");
        yield return Case("MissingShape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "missing shape");
        yield return Case("ShapeNotIntegers", "{" + Entry("a", "F32", "[2.5]", 0, 8) + "}", 8, "expected integers");
        yield return Case("NegativeDim", "{" + Entry("a", "F32", "[-2]", 0, 8) + "}", 8, "negative dimension");
        yield return Case("MissingOffsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing data_offsets");
        yield return Case("ThreeOffsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8, "expected [begin, end]");
        yield return Case("ShapeMismatch", "{" + Entry("a", "F32", "[3]", 0, 8) + "}", 8, "needs 12 bytes");
        yield return Case("DtypeMismatch", "{" + Entry("a", "BF16", "[2]", 0, 8) + "}", 8, "needs 4 bytes");
        yield return Case("OffsetsPastEnd", "{" + Entry("a", "F32", "[2]", 4, 12) + "}", 8, "run past the data section");
        yield return Case("OffsetsReversed", "{" + Entry("a", "F32", "[0]", 8, 4) + "}", 8, "not an ascending range");
        yield return Case("Overlap", "{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 4, 12) + "}", 12, "overlaps tensor 'a'");
        yield return Case("Duplicate", "{" + Entry("a", "F32", "[1]", 0, 4) + "," + Entry("a", "F32", "[1]", 4, 8) + "}", 8, "duplicate key 'a'");
        yield return Case("ShapeOverflow", "{" + Entry("a", "F32", "[4611686018427387904,4]", 0, 8) + "}", 8, "too large");
        yield return Case("MetadataNotObject", "{\"__metadata__\":[1]}", 0, "__metadata__");
    }

    [TestCaseSource(nameof(BadHeaders))]
    public void BadHeaderIsReported(string header, int dataBytes, string expect)
    {
        using var dir = new TempDirectory();
        var path = RawSafetensors.Write(dir, FileName, header, dataBytes);
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain(FileName).And.Contain(expect));
        TestContext.Out.WriteLine(e.Message);
    }

    [TestCase(0)]
    [TestCase(5)]
    public void FileShorterThanTheLengthPrefix(int length)
    {
        using var dir = new TempDirectory();
        var path = dir.File(FileName);
        File.WriteAllBytes(path, new byte[length]);
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain(FileName).And.Contain("too short"));
    }

    [Test]
    public void HeaderLengthPastEndOfFile()
    {
        using var dir = new TempDirectory();
        var bytes = RawSafetensors.Build("{" + Entry("a", "F32", "[2]", 0, 8) + "}", new byte[8]);
        var path = dir.File(FileName);
        File.WriteAllBytes(path, bytes[..20]); // cut inside the header
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain(FileName).And.Contain("runs past the end of the file"));
    }

    [Test]
    public void TruncatedDataSection()
    {
        using var dir = new TempDirectory();
        var bytes = RawSafetensors.Build("{" + Entry("a", "F32", "[2]", 0, 8) + "}", new byte[8]);
        var path = dir.File(FileName);
        File.WriteAllBytes(path, bytes[..^3]);
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain(FileName).And.Contain("tensor 'a'").And.Contain("truncated"));
    }

    [Test]
    public void AbsurdHeaderLength()
    {
        using var dir = new TempDirectory();
        var path = dir.File(FileName);
        var bytes = new byte[64];
        bytes[7] = 0x7F; // a length of ~9e18 bytes: a text file or garbage, not safetensors
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain(FileName).And.Contain("exceeds"));
    }

    [Test]
    public void UnknownTensorNameIsReportedWithTheFile()
    {
        using var dir = new TempDirectory();
        using var file = SafetensorsFile.Open(RawSafetensors.Write(dir, FileName, "{" + Entry("a", "F32", "[2]", 0, 8) + "}", 8));
        var e = Assert.Throws<SafetensorsFormatException>(() => file.ReadFloat32("b"));
        Assert.That(e!.Message, Does.Contain(FileName).And.Contain("'b'").And.Contain("not found"));
        Assert.That(e.TensorName, Is.EqualTo("b"));
        Assert.Throws<SafetensorsFormatException>(() => file.RawBytes("b"));
        Assert.Throws<SafetensorsFormatException>(() => file.Info("b"));
    }
}
