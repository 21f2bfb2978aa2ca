using System.Text;
using System.Text.Json.Nodes;
using Converter.Formats.Safetensors;
using NUnit.Framework;
using static Converter.Convert.Tests.SyntheticModelFixture;

namespace Converter.Convert.Tests;

/// <summary>
/// DESIGN.md "Conventions": bad input gets one clear line naming the file and the problem, exit code 1, and nothing
/// already written is lost or left half-written.
/// </summary>
[NonParallelizable]
public class ConvertBadInputTests
{
    private static void AssertRejected(string model, string expected, string? outDir = null)
    {
        outDir ??= NewPath("rejected");
        var (code, output, log) = Run(ConvertArgs(model, outDir, 4));
        Assert.That(code, Is.EqualTo(1), log);
        var lines = log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("trellis:", StringComparison.Ordinal)).ToList();
        Assert.That(lines, Has.Count.EqualTo(1), log);
        Assert.That(lines[0], Does.StartWith("trellis: error: ").And.Contain(expected));
        Assert.That(output, Is.Empty);
        Assert.That(File.Exists(Path.Combine(outDir, "model.safetensors")), Is.False, "no output model was written");
    }

    [Test]
    public void TruncatedWeights()
    {
        var model = CopyModel("truncated");
        var path = Path.Combine(model, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        AssertRejected(model, "model.safetensors");
    }

    [Test]
    public void UnknownDtype()
    {
        var model = CopyModel("dtype");
        var path = Path.Combine(model, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        // Same-length edit of the JSON header: one tensor's "BF16" becomes "XF16".
        int headerLength = (int)BitConverter.ToUInt64(bytes, 0);
        var header = Encoding.UTF8.GetString(bytes, 8, headerLength);
        int at = header.IndexOf("\"BF16\"", StringComparison.Ordinal);
        Encoding.UTF8.GetBytes("\"XF16\"").CopyTo(bytes, 8 + Encoding.UTF8.GetByteCount(header[..at]));
        File.WriteAllBytes(path, bytes);
        AssertRejected(model, "XF16");
    }

    [Test]
    public void UnsupportedArchitecture()
    {
        var model = CopyModel("arch");
        var path = Path.Combine(model, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!;
        config["architectures"] = new JsonArray("GPT2LMHeadModel");
        config["model_type"] = "gpt2";
        File.WriteAllText(path, config.ToJsonString());
        AssertRejected(model, "config.json");
    }

    [Test]
    public void WeightShapeNotMatchingTheConfig()
    {
        var model = CopyModel("dims");
        var path = Path.Combine(model, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!;
        config["intermediate_size"] = 200;
        File.WriteAllText(path, config.ToJsonString());
        AssertRejected(model, "gate_proj");
    }

    [Test]
    public void NonFiniteWeightNamesTheTensor()
    {
        var model = CopyModel("nan");
        var path = Path.Combine(model, "model.safetensors");
        var writer = new SafetensorsWriter();
        using (var source = SafetensorsFile.Open(path))
        {
            foreach (var name in source.TensorNames)
            {
                var info = source.Info(name);
                var values = source.ReadFloat32(name);
                if (name == "model.layers.0.mlp.up_proj.weight")
                    values[77] = float.PositiveInfinity;
                writer.AddFloat32(name, info.Shape, values, DType.BF16);
            }
            writer.Write(path + ".new");
        }
        File.Move(path + ".new", path, overwrite: true);
        AssertRejected(model, "model.layers.0.mlp.up_proj.weight");
    }

    [Test]
    public void MissingTokenizer()
    {
        var model = CopyModel("notok");
        File.Delete(Path.Combine(model, "tokenizer.json"));
        AssertRejected(model, "tokenizer.json: missing tokenizer");
    }

    [Test]
    public void CalibrationTextTooShort()
    {
        var text = NewPath("short") + ".txt";
        File.WriteAllText(text, "Far too short.");
        var outDir = NewPath("short-out");
        var args = ConvertArgs(ModelDir, outDir, 4);
        args[Array.IndexOf(args, "--cal-text") + 1] = text;
        var (code, _, log) = Run(args);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(log, Does.Contain(text).And.Contain("lower --cal-rows or --cal-cols"));
    }

    [Test]
    public void NonEmptyOutputDirectoryIsKept()
    {
        var outDir = NewPath("occupied");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "keep.txt"), "mine");
        AssertRejected(ModelDir, "output directory is not empty", outDir);
        Assert.That(File.ReadAllText(Path.Combine(outDir, "keep.txt")), Is.EqualTo("mine"));
    }

    [Test]
    public void FailedOverwriteKeepsThePreviousOutput()
    {
        var outDir = NewPath("previous");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "model.safetensors"), "previous model");
        var model = CopyModel("broken");
        File.Delete(Path.Combine(model, "tokenizer.json"));
        var (code, _, _) = Run(ConvertArgs(model, outDir, 4, "--overwrite"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "model.safetensors")), Is.EqualTo("previous model"));
    }

    [Test]
    public void MissingModelDirectory() => AssertRejected(NewPath("absent"), "model directory not found");

    [Test]
    public void AJobThatCannotFitIsRefusedBeforeAnythingIsWritten()
    {
        // A million rows of 4096 tokens: 2 TB of calibration state. Refused before the text is even tokenized.
        var outDir = NewPath("too-large");
        var (code, output, log) = Run("convert", ModelDir, "-o", outDir, "--cal-rows", "1000000", "--cal-cols", "4096", "--cal-text", CalText);
        Assert.That(code, Is.EqualTo(1), log);
        var lines = log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("trellis:", StringComparison.Ordinal)).ToList();
        Assert.That(lines, Has.Count.EqualTo(1), log);
        Assert.That(lines[0], Does.StartWith("trellis: error: this job does not fit: host memory: needs about").And.Contain("calibration states 1.9 TiB on the host"));
        Assert.That(log, Does.Contain("convert: estimate: host memory"), "the estimate is logged before the refusal");
        Assert.That(output, Is.Empty);
        Assert.That(Directory.Exists(outDir) || Directory.Exists(outDir + ".work"), Is.False, "nothing was written");
    }
}
