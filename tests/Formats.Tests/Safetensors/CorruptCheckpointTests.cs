using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Safetensors;

/// <summary>A bad checkpoint directory or index is a <see cref="SafetensorsFormatException"/> naming the index (or directory) and the problem.</summary>
public class CorruptCheckpointTests
{
    private const string Shard = "model-00001-of-00001.safetensors";

    /// <summary>A directory with one valid shard holding tensor "a" and the given index text.</summary>
    private static TempDirectory WithIndex(string indexJson)
    {
        var dir = new TempDirectory();
        RawSafetensors.Write(dir, Shard, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        File.WriteAllText(dir.File(CheckpointFiles.IndexFile), indexJson);
        return dir;
    }

    [Test]
    public void AValidIndexOpens()
    {
        using var dir = WithIndex("{\"metadata\":{\"total_size\":4},\"weight_map\":{\"a\":\"" + Shard + "\"}}");
        using var reader = CheckpointReader.Open(dir.Path);
        Assert.That(reader.ReadFloat32("a"), Is.EqualTo(new[] { 0f }));
    }

    [TestCase("{\"weight_map\":", "not valid JSON")]
    [TestCase("[]", "expected an object")]
    [TestCase("{\"metadata\":{}}", "no weight_map")]
    [TestCase("{\"weight_map\":{}}", "weight_map is empty")]
    [TestCase("{\"weight_map\":{\"a\":3}}", "expected a file name")]
    [TestCase("{\"weight_map\":{\"a\":\"model-00002-of-00002.safetensors\"}}", "shard file 'model-00002-of-00002.safetensors' is missing")]
    [TestCase("{\"weight_map\":{\"a\":\"../model-00001-of-00001.safetensors\"}}", "not a plain file name")]
    [TestCase("{\"weight_map\":{\"a\":\"" + Shard + "\",\"a\":\"" + Shard + "\"}}", "listed twice")]
    public void BadIndexIsReportedOnOpen(string indexJson, string expect)
    {
        using var dir = WithIndex(indexJson);
        var e = Assert.Throws<SafetensorsFormatException>(() => CheckpointReader.Open(dir.Path).Dispose());
        Assert.That(e!.Message, Does.Contain(CheckpointFiles.IndexFile).And.Contain(expect));
    }

    [Test]
    public void IndexNamingATensorTheShardLacks()
    {
        // Found on opening (every shard's header is read then), not when the tensor is first read.
        using var dir = WithIndex("{\"weight_map\":{\"a\":\"" + Shard + "\",\"b\":\"" + Shard + "\"}}");
        var e = Assert.Throws<SafetensorsFormatException>(() => CheckpointReader.Open(dir.Path).Dispose());
        Assert.That(e!.Message, Does.Contain(CheckpointFiles.IndexFile).And.Contain("'b'").And.Contain(Shard));
    }

    [Test]
    public void CorruptShardIsReportedWithTheShardName()
    {
        using var dir = WithIndex("{\"weight_map\":{\"a\":\"" + Shard + "\"}}");
        File.WriteAllBytes(dir.File(Shard), new byte[5]);
        var e = Assert.Throws<SafetensorsFormatException>(() => CheckpointReader.Open(dir.Path).Dispose());
        Assert.That(e!.Message, Does.Contain(Shard).And.Contain("too short"));
    }

    [Test]
    public void DirectoryWithoutWeights()
    {
        using var dir = new TempDirectory();
        var e = Assert.Throws<SafetensorsFormatException>(() => CheckpointReader.Open(dir.Path));
        Assert.That(e!.Message, Does.Contain(dir.Path).And.Contain("no model.safetensors"));
    }
}
