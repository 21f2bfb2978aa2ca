using System.Text;
using System.Text.Json.Nodes;
using Converter.Formats.HuggingFace;
using Converter.TestSupport;
using Converter.TestSupport.Fuzzing;

namespace Converter.Formats.Tests.Fuzzing;

/// <summary>
/// Issue 15 part 4: seeded mutations of config.json files of supported architectures (Llama with default and Llama 3.1
/// rope, a LongRoPE config, a multimodal wrapper with text_config) must each load, with the rope settings every
/// architecture reads, or fail with a one-line <see cref="ModelConfigException"/> naming the file.
/// </summary>
public class ModelConfigFuzzTests
{
    private const int Seed = 15_43;
    private const int CaseCount = 800;

    [Test]
    public void MutatedConfigsLoadOrFailWithTheOneLineError()
    {
        var bases = BaseConfigs();
        using var dir = new TempDirectory("trellis-fuzz-config-");
        var path = dir.File(ModelConfig.FileName);
        var run = new FuzzRun("config.json", TimeSpan.FromSeconds(10), 64L << 20);
        for (int i = 0; i < CaseCount; i++)
        {
            var random = new Random(Seed * 100_003 + i);
            var (label, json) = bases[i % bases.Count];
            var (bytes, what) = JsonMutator.Mutate(Encoding.UTF8.GetBytes(json), random);
            File.WriteAllBytes(path, bytes);
            run.Case($"case {i} ({label}): {what}", () => LoadAll(path, dir.Path), e => FuzzRun.UserError(e, path, typeof(ModelConfigException)));
        }
        run.AssertClean(minAccepted: CaseCount / 10, minRejected: CaseCount / 10);
    }

    private static void LoadAll(string path, string directory)
    {
        var before = Directory.GetFileSystemEntries(directory);
        var config = ModelConfig.Load(directory);
        // A number the forward would compute with must be finite: 1e400 reads as infinity, which is no rope setting.
        double[] numbers =
        [
            .. new[] { RopeConfig.Parse(config.Fields), RopeConfig.Parse(config.Fields, "sliding_attention") }.SelectMany(r => (double[])
            [
                r.Theta, r.Llama3?.Factor ?? 0, r.Llama3?.LowFreqFactor ?? 0, r.Llama3?.HighFreqFactor ?? 0, r.LongRope?.AttentionFactor ?? 0,
                .. r.LongRope?.ShortFactor ?? [], .. r.LongRope?.LongFactor ?? [],
            ]),
            RopeConfig.PartialRotaryFactor(config.Fields),
        ];
        if (!numbers.All(double.IsFinite))
            throw new InvalidOperationException($"{path} loaded with a rope setting of {numbers.First(n => !double.IsFinite(n))}");
        _ = config.ToString();
        if (config.HeadDim <= 0 || config.NumKeyValueHeads <= 0 || config.NumAttentionHeads % config.NumKeyValueHeads != 0)
            throw new InvalidOperationException($"{path} loaded with inconsistent heads: {config}");
        if (!Directory.GetFileSystemEntries(directory).SequenceEqual(before))
            throw new InvalidOperationException("loading wrote to the directory");
    }

    /// <summary>The repository's configs, and two variants built from the sample's: LongRoPE, and nested under text_config.</summary>
    internal static List<(string Label, string Json)> BaseConfigs()
    {
        var tiny = File.ReadAllText(Path.Combine(RepoPaths.SampleModel, ModelConfig.FileName));
        var longRope = JsonNode.Parse(tiny)!.AsObject();
        longRope["rope_parameters"] = new JsonObject
        {
            ["rope_type"] = "longrope",
            ["rope_theta"] = 10000.0,
            ["short_factor"] = new JsonArray(Enumerable.Range(0, 32).Select(i => (JsonNode?)JsonValue.Create(1.0 + i / 32.0)).ToArray()),
            ["long_factor"] = new JsonArray(Enumerable.Range(0, 32).Select(i => (JsonNode?)JsonValue.Create(2.0 + i / 16.0)).ToArray()),
            ["partial_rotary_factor"] = 0.5,
        };
        longRope["original_max_position_embeddings"] = 1024;
        var wrapped = new JsonObject
        {
            ["architectures"] = new JsonArray("Gemma3ForConditionalGeneration"),
            ["model_type"] = "gemma3",
            ["text_config"] = JsonNode.Parse(tiny),
            ["layer_types"] = new JsonArray("sliding_attention", "full_attention", "sliding_attention", "full_attention"),
        };
        return
        [
            ("tiny-llama", tiny),
            ("rand-llama31", File.ReadAllText(Path.Combine(RepoPaths.TestModel("rand-llama31"), ModelConfig.FileName))),
            ("rand-qwen3", File.ReadAllText(Path.Combine(RepoPaths.TestModel("rand-qwen3"), ModelConfig.FileName))),
            ("longrope", longRope.ToJsonString()),
            ("text_config", wrapped.ToJsonString()),
        ];
    }
}
