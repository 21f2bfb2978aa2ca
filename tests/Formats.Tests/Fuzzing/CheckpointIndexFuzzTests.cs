using System.Text;
using System.Text.Json.Nodes;
using Converter.Formats.Safetensors;
using Converter.Formats.Tests.Safetensors;
using Converter.TestSupport;
using Converter.TestSupport.Fuzzing;

namespace Converter.Formats.Tests.Fuzzing;

/// <summary>
/// Issue 15 part 4: seeded mutations of a sharded checkpoint (an index over two shards) — the index text, the weight
/// map pointing to missing shards, to the wrong shard or outside the directory, a shard damaged or gone — must each
/// open and read back every tensor, or fail with a one-line <see cref="SafetensorsFormatException"/> naming a file of
/// the checkpoint.
/// </summary>
public class CheckpointIndexFuzzTests
{
    private const int Seed = 15_42;
    private const int CaseCount = 600;
    private static readonly string Shard1 = CheckpointFiles.ShardName(0, 2), Shard2 = CheckpointFiles.ShardName(1, 2);

    [Test]
    public void MutatedCheckpointsOpenOrFailWithTheOneLineError()
    {
        var shard1 = SafetensorsFuzzTests.Build([("model.a", "BF16", [4, 2]), ("model.b", "F32", [3])]);
        var shard2 = SafetensorsFuzzTests.Build([("model.c", "F16", [2, 2]), ("model.d", "I64", [1]), ("model.e", "BF16", [0])]);
        var index = Index(shard1.Data.Length + shard2.Data.Length,
            ("model.a", Shard1), ("model.b", Shard1), ("model.c", Shard2), ("model.d", Shard2), ("model.e", Shard2));

        var run = new FuzzRun("checkpoint index", TimeSpan.FromSeconds(10), 64L << 20);
        using var dir = new TempDirectory("trellis-fuzz-index-");
        for (int i = 0; i < CaseCount; i++)
        {
            // One directory, restored to the valid checkpoint before each case (a case may have made a shard a directory).
            if (Directory.Exists(dir.File(Shard2)))
                Directory.Delete(dir.File(Shard2));
            File.WriteAllBytes(dir.File(Shard1), RawSafetensors.Build(shard1.Header, shard1.Data));
            File.WriteAllBytes(dir.File(Shard2), RawSafetensors.Build(shard2.Header, shard2.Data));
            File.WriteAllText(dir.File(CheckpointFiles.IndexFile), index);
            var random = new Random(Seed * 100_003 + i);
            var what = Mutate(dir, index, shard2, random);
            run.Case($"case {i}: {what}", () => OpenAndReadAll(dir.Path), e => FuzzRun.UserError(e, dir.Path, typeof(SafetensorsFormatException)));
        }
        run.AssertClean(minAccepted: CaseCount / 20, minRejected: CaseCount / 2);
    }

    private static void OpenAndReadAll(string directory)
    {
        var before = Directory.GetFileSystemEntries(directory);
        var names = CheckpointReader.ReadTensorNames(directory);
        using (var reader = CheckpointReader.Open(directory))
        {
            if (names == null || !names.SequenceEqual(reader.TensorNames))
                throw new InvalidOperationException("ReadTensorNames and Open disagree");
            foreach (var name in reader.TensorNames)
            {
                var file = reader.FileOf(name);
                if (Path.GetDirectoryName(Path.GetFullPath(file)) != Path.GetFullPath(directory))
                    throw new InvalidOperationException($"tensor '{name}' is read from {file}, outside the checkpoint");
                SafetensorsFuzzTests.ReadBack(reader, name, new FileInfo(file).Length);
            }
        }
        if (!Directory.GetFileSystemEntries(directory).SequenceEqual(before))
            throw new InvalidOperationException("reading wrote to the directory");
    }

    private static string Index(long totalSize, params (string Tensor, string Shard)[] map)
    {
        var weightMap = new JsonObject();
        foreach (var (tensor, shard) in map)
            weightMap[tensor] = shard;
        return new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = totalSize }, ["weight_map"] = weightMap }.ToJsonString();
    }

    private static string Mutate(TempDirectory dir, string index, (string Header, byte[] Data) shard2, Random random)
    {
        var indexPath = dir.File(CheckpointFiles.IndexFile);
        switch (random.Next(100))
        {
            case < 45:
                {
                    var (bytes, what) = JsonMutator.Mutate(Encoding.UTF8.GetBytes(index), random);
                    File.WriteAllBytes(indexPath, bytes);
                    return "index JSON: " + what;
                }
            case < 75:
                {
                    var root = JsonNode.Parse(index)!.AsObject();
                    var map = root["weight_map"]!.AsObject();
                    var tensors = map.Select(p => p.Key).ToList();
                    var tensor = tensors[random.Next(tensors.Count)];
                    string what;
                    switch (random.Next(4))
                    {
                        case 0:
                            {
                                string[] shards =
                                [
                                    Shard1, Shard2, CheckpointFiles.ShardName(2, 2), "", ".", "..", "../" + Shard1, "/" + Shard1, "sub/" + Shard1,
                                    dir.File(Shard1), Shard1.ToUpperInvariant(), Shard1 + " ", CheckpointFiles.IndexFile, "model.safetensors",
                                ];
                                var shard = shards[random.Next(shards.Length)];
                                map[tensor] = shard;
                                what = $"'{tensor}' mapped to \"{shard}\"";
                                break;
                            }
                        case 1:
                            map.Remove(tensor);
                            what = $"'{tensor}' left out of the weight map";
                            break;
                        case 2:
                            map["model.absent"] = random.Next(2) == 0 ? Shard1 : Shard2;
                            what = $"absent tensor mapped to {map["model.absent"]}";
                            break;
                        default:
                            map.Clear();
                            what = "empty weight map";
                            break;
                    }
                    File.WriteAllText(indexPath, root.ToJsonString());
                    return "index edit: " + what;
                }
            case < 92:
                {
                    var (bytes, what) = SafetensorsFuzzTests.MutateFile(shard2.Header, shard2.Data, random);
                    File.WriteAllBytes(dir.File(Shard2), bytes);
                    return $"{Shard2}: {what}";
                }
            case < 96:
                File.Delete(dir.File(Shard2));
                if (random.Next(2) == 0)
                {
                    Directory.CreateDirectory(dir.File(Shard2));
                    return $"{Shard2} is a directory";
                }
                return $"{Shard2} deleted";
            default:
                File.Delete(indexPath);
                return "index deleted";
        }
    }
}
