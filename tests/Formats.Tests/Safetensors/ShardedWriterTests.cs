using System.Text.Json;
using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Safetensors;

public class ShardedWriterTests
{
    /// <summary>A module of <paramref name="tensors"/> F32 tensors of 10 values (40 bytes each) with distinct values.</summary>
    private static PendingTensor[] Module(int index, int tensors) =>
        Enumerable.Range(0, tensors)
            .Select(t => PendingTensor.FromFloat32($"m{index}.t{t}", [10], Enumerable.Range(0, 10).Select(v => index * 1000f + t * 10 + v).ToArray()))
            .ToArray();

    [Test]
    public void ModulesAreNeverSplitAndShardsRespectTheLimit()
    {
        using var dir = new TempDirectory();
        var writer = new ShardedSafetensorsWriter(maxShardBytes: 250);
        writer.Metadata["format"] = "pt";
        var modules = new[] { Module(0, 3), Module(1, 3), Module(2, 2), Module(3, 3), Module(4, 1) }; // 120, 120, 80, 120, 40 bytes
        foreach (var m in modules)
            writer.AddModule(m);

        var result = writer.Write(dir.Path);

        // 120+120 = 240; +80 would be 320 > 250 → new shard: 80+120 = 200; +40 = 240 fits.
        Assert.That(result.Files, Is.EqualTo(new[]
        {
            "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", CheckpointFiles.IndexFile,
        }));
        Assert.That(result.TotalSize, Is.EqualTo(480));
        var shardOf = result.WeightMap.ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var m in modules)
            Assert.That(m.Select(t => shardOf[t.Name]).Distinct().Count(), Is.EqualTo(1), $"module {m[0].Name} split");
        foreach (var shard in result.Files.Take(2))
        {
            using var file = SafetensorsFile.Open(dir.File(shard));
            Assert.That(file.Tensors.Sum(t => t.ByteLength), Is.LessThanOrEqualTo(250));
            Assert.That(file.Metadata["format"], Is.EqualTo("pt"));
        }

        using (var index = JsonDocument.Parse(File.ReadAllBytes(dir.File(CheckpointFiles.IndexFile))))
        {
            Assert.That(index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64(), Is.EqualTo(480));
            var map = index.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => (p.Name, p.Value.GetString())).ToArray();
            Assert.That(map, Is.EqualTo(result.WeightMap.Select(kv => (kv.Key, (string?)kv.Value)).ToArray()));
        }

        using var reader = CheckpointReader.Open(dir.Path);
        Assert.That(reader.IsSharded, Is.True);
        Assert.That(reader.TensorNames, Is.EqualTo(modules.SelectMany(m => m).Select(t => t.Name)));
        Assert.That(reader.ReadFloat32("m3.t2"), Is.EqualTo(Enumerable.Range(0, 10).Select(v => 3020f + v).ToArray()));
        Assert.That(reader.FileOf("m3.t2"), Does.EndWith("model-00002-of-00002.safetensors"));
    }

    [Test]
    public void AModuleLargerThanTheLimitGetsItsOwnShard()
    {
        var writer = new ShardedSafetensorsWriter(maxShardBytes: 100);
        writer.AddModule(Module(0, 1));
        writer.AddModule(Module(1, 5)); // 200 bytes
        writer.AddModule(Module(2, 1));
        Assert.That(writer.PlanShards().Select(s => s.Count), Is.EqualTo(new[] { 1, 5, 1 }));
    }

    [Test]
    public void OneShardIsWrittenAsModelSafetensorsWithoutIndex()
    {
        using var dir = new TempDirectory();
        var writer = new ShardedSafetensorsWriter(maxShardBytes: 1 << 20);
        writer.AddModule(Module(0, 2));
        writer.AddModule(Module(1, 2));
        var result = writer.Write(dir.Path);

        Assert.That(result.Files, Is.EqualTo(new[] { CheckpointFiles.SingleFile }));
        Assert.That(Directory.GetFiles(dir.Path).Select(Path.GetFileName), Is.EqualTo(new[] { CheckpointFiles.SingleFile }));
        using var reader = CheckpointReader.Open(dir.Path);
        Assert.That(reader.IsSharded, Is.False);
        Assert.That(reader.TensorNames, Has.Count.EqualTo(4));
    }

    [Test]
    public void DuplicateNamesAcrossModulesAreRejected()
    {
        var writer = new ShardedSafetensorsWriter(maxShardBytes: 1000);
        writer.AddModule(Module(0, 1));
        Assert.Throws<ArgumentException>(() => writer.AddModule(Module(0, 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new ShardedSafetensorsWriter(0));
        Assert.Throws<InvalidOperationException>(() => new ShardedSafetensorsWriter(10).Write(Path.GetTempPath()));
    }

    [Test]
    public void TinyLlamaReshardedByLayerReadsBackIdentically()
    {
        using var dir = new TempDirectory();
        using var source = CheckpointReader.Open(RepoPaths.SampleModel);
        var writer = new ShardedSafetensorsWriter(maxShardBytes: 3 << 20);
        // Modules as a layer-streaming converter would form them: each decoder layer, and the rest one per tensor.
        foreach (var group in source.TensorNames.GroupBy(LayerOf))
            writer.AddModule(group.Select(n => PendingTensor.CopyOf(source, n)));
        var result = writer.Write(dir.Path);

        Assert.That(result.Files, Has.Count.GreaterThan(2));
        using var copy = CheckpointReader.Open(dir.Path);
        Assert.That(copy.TensorNames, Is.EquivalentTo(source.TensorNames));
        foreach (var name in source.TensorNames)
        {
            Assert.That(copy.Info(name).Shape, Is.EqualTo(source.Info(name).Shape));
            Assert.That(copy.RawBytes(name).SequenceEqual(source.RawBytes(name)), Is.True, name);
        }
        foreach (var layer in copy.TensorNames.GroupBy(LayerOf))
            Assert.That(layer.Select(copy.FileOf).Distinct().Count(), Is.EqualTo(1), layer.Key);
    }

    private static string LayerOf(string name)
    {
        var parts = name.Split('.');
        return parts.Length > 2 && parts[1] == "layers" ? $"layer {parts[2]}" : name;
    }
}
