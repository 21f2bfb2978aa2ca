using System.Buffers.Binary;
using System.Text;
using Converter.Cli.Samples;
using Converter.Conversion.Samples;
using Converter.Formats.Safetensors;
using Converter.Models.Synthetic;
using Converter.TestSupport;
using Converter.TestSupport.Fuzzing;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// Issue 15 part 4 through the real command line: a sharded model folder with one mutated file (config.json,
/// tokenizer.json, the index, a shard's header) given to `convert` (stopped before the first module, so that only
/// the reading is exercised) and to `inspect` either works (exit 0) or fails with exit code 1 and one line
/// "trellis: error: …" naming the file, with nothing on stdout, and — for convert — neither the output folder nor its
/// work folder created.
/// </summary>
[NonParallelizable]
public class CliFuzzTests
{
    private const int Seed = 15_46;
    private const int CaseCount = 240;

    /// <summary>A well-formed rejection by the CLI, so that the fuzz run can count it apart from a success.</summary>
    private sealed class Rejected(string line) : Exception(line);

    /// <summary>A promise the CLI broke: <see cref="Kind"/> groups the failures, the message adds this case's details.</summary>
    private sealed class Broken(string kind, string detail) : Exception($"{kind}: {detail}")
    {
        public string Kind => kind;
    }

    [Test]
    public void MutatedModelFoldersConvertOrFailWithOneLineAndWriteNothing()
    {
        using var root = new TempDirectory("trellis-fuzz-cli-");
        var model = Path.Combine(root.Path, "model");
        // Shards of 512 KiB: the test-tiny model's 1.5 MB spread over an index and several shards.
        SyntheticCheckpoint.Write(model, SyntheticShape.Presets["test-tiny"], seed: 1, outliers: 0, shardBytes: 512 << 10, BuiltInSamples.Tokenizer());
        var files = Directory.GetFiles(model).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        var shards = files.Where(f => f!.EndsWith(".safetensors", StringComparison.Ordinal)).ToArray();
        Assert.That(shards, Has.Length.GreaterThanOrEqualTo(2), "the base model is sharded");
        Assert.That(files, Does.Contain(CheckpointFiles.IndexFile));
        // A short calibration text: tokenizing the default 1.2 MB for every case would dominate the run.
        var calText = Path.Combine(root.Path, "calibration.txt");
        File.WriteAllText(calText, File.ReadAllText(SyntheticModelFixture.CalText)[..20_000]);

        var run = new FuzzRun("CLI convert/inspect", TimeSpan.FromSeconds(60), long.MaxValue);
        for (int i = 0; i < CaseCount; i++)
        {
            var random = new Random(Seed * 100_003 + i);
            var caseDir = Path.Combine(root.Path, $"case-{i}");
            var copy = Path.Combine(caseDir, "model");
            Directory.CreateDirectory(copy);
            foreach (var file in files)
                File.Copy(Path.Combine(model, file!), Path.Combine(copy, file!));
            var (target, what) = Mutate(copy, shards!, random);
            var outDir = Path.Combine(caseDir, "out");
            bool inspect = i % 3 == 2;
            string[] args = inspect
                ? ["inspect", copy]
                : ["convert", copy, "-o", outDir, "--device", "cpu", "--stop-after", "0", "--cal-rows", "2", "--cal-cols", "16", "--cal-text", calText, "--head-bits", "16"];
            run.Case($"case {i} ({args[0]}): {target}: {what}", () => RunCli(args, copy, target, outDir), e => e switch { Rejected => null, Broken b => b.Kind, _ => $"unexpected {e.GetType().Name}" });
            Directory.Delete(caseDir, recursive: true);
        }
        run.AssertClean(minAccepted: CaseCount / 20, minRejected: CaseCount / 4);
    }

    /// <summary>The finding: a malformed tokenizer.json was read only after the work folder had been created.</summary>
    [Test]
    public void MalformedTokenizerLeavesNoWorkFolder()
    {
        var model = SyntheticModelFixture.CopyModel("bad-tokenizer");
        File.WriteAllText(Path.Combine(model, "tokenizer.json"), "{\"model\": ");
        var outDir = SyntheticModelFixture.NewPath("bad-tokenizer-out");
        var (code, _, log) = SyntheticModelFixture.Run(SyntheticModelFixture.ConvertArgs(model, outDir, 4));
        Assert.That(code, Is.EqualTo(1), log);
        Assert.That(log, Does.Contain("trellis: error: " + Path.Combine(model, "tokenizer.json") + ": not valid JSON"));
        Assert.That(Directory.Exists(outDir) || Directory.Exists(outDir + ".work"), Is.False, "nothing was written");
    }

    /// <summary>Runs the CLI in process and throws <see cref="Rejected"/> for a well-formed failure, anything else for a broken promise.</summary>
    private static void RunCli(string[] args, string model, string target, string outDir)
    {
        var before = Directory.GetFileSystemEntries(model).Order(StringComparer.Ordinal).ToArray();
        var (code, output, log) = SyntheticModelFixture.Run(args);
        var lines = log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("trellis:", StringComparison.Ordinal)).ToList();
        if (!Directory.GetFileSystemEntries(model).Order(StringComparer.Ordinal).SequenceEqual(before))
            throw new Broken("the model folder changed", $"exit {code}");
        if (Directory.Exists(outDir))
            throw new Broken("the output folder was written", $"exit {code}");
        if (code == 0)
            return;
        if (code != 1 || lines.Count != 1 || !lines[0].StartsWith("trellis: error: ", StringComparison.Ordinal))
            throw new Broken($"exit {code} with {lines.Count} 'trellis:' lines", Clip(lines.FirstOrDefault() ?? log));
        if (!lines[0].Contains(target, StringComparison.Ordinal) && !lines[0].Contains(model, StringComparison.Ordinal))
            throw new Broken("the error names neither the file nor the model folder", Clip(lines[0]));
        if (output.Length > 0)
            throw new Broken("a failure printed to stdout", Clip(output));
        if (Directory.Exists(Path.TrimEndingDirectorySeparator(outDir) + ".work"))
            throw new Broken("failed after creating the work folder", Clip(lines[0]));
        throw new Rejected(lines[0]);
    }

    private static string Clip(string s) => s.Length <= 200 ? s : s[..197] + "...";

    /// <summary>Mutates one file of the model copy; returns its name and what was done.</summary>
    private static (string Target, string What) Mutate(string model, string[] shards, Random random)
    {
        int pick = random.Next(100);
        var target = pick switch
        {
            < 30 => "config.json",
            < 45 => "tokenizer.json",
            < 65 => CheckpointFiles.IndexFile,
            _ => shards[random.Next(shards.Length)],
        };
        var path = Path.Combine(model, target);
        var bytes = File.ReadAllBytes(path);
        if (!target.EndsWith(".safetensors", StringComparison.Ordinal))
        {
            var (json, what) = JsonMutator.Mutate(bytes, random);
            File.WriteAllBytes(path, json);
            return (target, what);
        }

        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (random.Next(2) == 0)
        {
            var (bad, what) = ByteMutator.Mutate(bytes, 0, 8 + headerLength, random);
            File.WriteAllBytes(path, bad);
            return (target, "header bytes: " + what);
        }
        var (header, how) = JsonMutator.Mutate(bytes[8..(8 + headerLength)], random);
        var rebuilt = new byte[8 + header.Length + bytes.Length - 8 - headerLength];
        BinaryPrimitives.WriteUInt64LittleEndian(rebuilt, (ulong)header.Length);
        header.CopyTo(rebuilt, 8);
        bytes.AsSpan(8 + headerLength).CopyTo(rebuilt.AsSpan(8 + header.Length));
        File.WriteAllBytes(path, rebuilt);
        return (target, "header JSON: " + how);
    }
}
