using Converter.Formats.Numerics;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Safetensors;

public class CheckpointReaderTests
{
    [Test]
    public void SingleFileCheckpointMatchesTheFile()
    {
        using var reader = CheckpointReader.Open(RepoPaths.SampleModel);
        using var file = SafetensorsFile.Open(Path.Combine(RepoPaths.SampleModel, "model.safetensors"));
        Assert.That(reader.IsSharded, Is.False);
        Assert.That(reader.ShardFiles, Is.EqualTo(new[] { "model.safetensors" }));
        Assert.That(reader.TensorNames, Is.EqualTo(file.TensorNames));
        Assert.That(reader.Info("model.norm.weight"), Is.EqualTo(file.Info("model.norm.weight")));
        Assert.That(reader.ReadFloat32("lm_head.weight"), Is.EqualTo(file.ReadFloat32("lm_head.weight")));
    }

    [Test]
    public void ShardedSmallQwen2ReadsEveryTensor()
    {
        var dir = RepoPaths.RequireSharedModel("small-qwen2");
        using var reader = CheckpointReader.Open(dir);
        Assert.That(reader.IsSharded, Is.True);
        Assert.That(reader.ShardFiles, Has.Count.EqualTo(4));
        Assert.That(reader.ShardFiles[3], Is.EqualTo("model-00004-of-00004.safetensors"));

        long total = 0;
        foreach (var name in reader.TensorNames)
        {
            var info = reader.Info(name);
            total += info.ByteLength;
            Assert.That(FiniteCheck.AllFinite(reader.ReadFloat32(name)), Is.True, name);
        }
        var index = CheckpointIndex.Load(Path.Combine(dir, CheckpointFiles.IndexFile));
        Assert.That(total, Is.EqualTo(index.TotalSize));
        Assert.That(reader.FileOf("model.layers.1.input_layernorm.weight"), Does.EndWith("model-00002-of-00004.safetensors"));
    }

    [Test]
    public void ReadsAfterDisposeThrow()
    {
        var reader = CheckpointReader.Open(RepoPaths.SampleModel);
        reader.Dispose();
        Assert.Throws<ObjectDisposedException>(() => reader.RawBytes("model.norm.weight"));
    }

    [Test]
    public void UnknownTensorNamesTheCheckpoint()
    {
        using var reader = CheckpointReader.Open(RepoPaths.SampleModel);
        var e = Assert.Throws<SafetensorsFormatException>(() => reader.ReadFloat32("model.layers.9.mlp.up_proj.weight"));
        Assert.That(e!.Message, Does.Contain("model.safetensors").And.Contain("model.layers.9.mlp.up_proj.weight").And.Contain("not found"));
    }

    /// <summary>ReadTensorNames lists what Open would, from the index or the header alone, and null without a checkpoint.</summary>
    [Test]
    public void TensorNamesWithoutOpeningTheCheckpoint()
    {
        using (var reader = CheckpointReader.Open(RepoPaths.SampleModel))
            Assert.That(CheckpointReader.ReadTensorNames(RepoPaths.SampleModel), Is.EqualTo(reader.TensorNames));
        using var empty = new TempDirectory();
        Assert.That(CheckpointReader.ReadTensorNames(empty.Path), Is.Null);

        var dir = RepoPaths.RequireSharedModel("small-qwen2");
        using var sharded = CheckpointReader.Open(dir);
        Assert.That(CheckpointReader.ReadTensorNames(dir), Is.EqualTo(sharded.TensorNames));
    }

    [Test]
    public void HeaderReadAloneIsTheMappedFilesHeader()
    {
        var path = Path.Combine(RepoPaths.SampleModel, CheckpointFiles.SingleFile);
        using var file = SafetensorsFile.Open(path);
        Assert.That(SafetensorsHeader.Read(path).Tensors, Is.EqualTo(file.Tensors));

        using var dir = new TempDirectory();
        File.WriteAllBytes(dir.File("short.safetensors"), [1, 2, 3]);
        Assert.That(() => SafetensorsHeader.Read(dir.File("short.safetensors")),
            Throws.TypeOf<SafetensorsFormatException>().With.Message.Contains("too short"));
    }
}
