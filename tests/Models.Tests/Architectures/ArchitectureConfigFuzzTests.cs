using System.Text;
using System.Text.Json.Nodes;
using Converter.Formats.HuggingFace;
using Converter.TestSupport;
using Converter.TestSupport.Fuzzing;

namespace Converter.Models.Tests.Architectures;

/// <summary>
/// Issue 15 part 4: config.json is read twice, the shared keys by <see cref="ModelConfig"/> and the rest by each
/// architecture's declaration. Seeded mutations of the configs of the architectures in the repository (and of those
/// in ../shared when present) must each describe a model that can be built without weights — what `convert` does
/// before it reads anything — or fail with a one-line <see cref="ModelConfigException"/> naming the file.
/// </summary>
public class ArchitectureConfigFuzzTests
{
    private const int Seed = 15_45;
    private const int CaseCount = 800;

    [Test]
    public void MutatedConfigsDescribeAModelOrFailWithTheOneLineError()
    {
        var bases = BaseConfigs();
        using var dir = new TempDirectory("trellis-fuzz-arch-");
        var path = dir.File(ModelConfig.FileName);
        var run = new FuzzRun("architecture config.json", TimeSpan.FromSeconds(10), 64L << 20);
        for (int i = 0; i < CaseCount; i++)
        {
            var random = new Random(Seed * 100_003 + i);
            var (label, json) = bases[i % bases.Count];
            var (bytes, what) = JsonMutator.Mutate(Encoding.UTF8.GetBytes(json), random);
            File.WriteAllBytes(path, bytes);
            run.Case($"case {i} ({label}): {what}", () => Build(dir.Path), e => FuzzRun.UserError(e, path, typeof(ModelConfigException)));
        }
        run.AssertClean(minAccepted: CaseCount / 10, minRejected: CaseCount / 10);
    }

    /// <summary>The finding: a mixture of two billion experts was built expert by expert (the run never finished).</summary>
    [Test]
    public void TwoBillionExpertsAreRefused()
    {
        using var dir = new TempDirectory();
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoPaths.SampleModel, ModelConfig.FileName)))!;
        json["architectures"] = new JsonArray("MixtralForCausalLM");
        json["num_local_experts"] = 2000000014;
        json["num_experts_per_tok"] = 2;
        File.WriteAllText(dir.File(ModelConfig.FileName), json.ToJsonString());
        var e = Assert.Throws<ModelConfigException>(() => TransformerModel.FromConfig(ModelConfig.Load(dir.Path)))!;
        Assert.That(e.Message, Does.Contain("'num_local_experts' is 2000000014, more than the 4,096"));
    }

    private static void Build(string directory)
    {
        var model = TransformerModel.FromConfig(ModelConfig.Load(directory));
        var spec = model.Spec;
        if (spec.LayerAttention.Count != spec.Layers || model.Layers.Count != spec.Layers || spec.HeadDim <= 0 || spec.RotaryDims > spec.HeadDim)
            throw new InvalidOperationException($"inconsistent spec: {spec.Layers} layers, {spec.LayerAttention.Count} attention settings, head_dim {spec.HeadDim}, rotary {spec.RotaryDims}");
        // What convert does next without weights: every module's tensor names (the bit allocation's targets).
        _ = model.Modules.SelectMany(m => m.TensorNames).Count();
    }

    /// <summary>The config of every test model present: the repository's four, and ../shared's when it is there.</summary>
    private static List<(string Label, string Json)> BaseConfigs()
    {
        var dirs = new List<(string, string)> { ("tiny-llama", RepoPaths.SampleModel) };
        foreach (var model in Directory.GetDirectories(Path.Combine(RepoPaths.TestData, "models")))
            dirs.Add((Path.GetFileName(model), model));
        var shared = Path.GetFullPath(Path.Combine(RepoPaths.Root, "..", "shared", "models"));
        if (Directory.Exists(shared))
        {
            foreach (var model in Directory.GetDirectories(shared).Order(StringComparer.Ordinal))
                dirs.Add((Path.GetFileName(model), model));
        }
        return dirs
            .Where(d => File.Exists(Path.Combine(d.Item2, ModelConfig.FileName)))
            .Select(d => (d.Item1, File.ReadAllText(Path.Combine(d.Item2, ModelConfig.FileName))))
            .ToList();
    }
}
