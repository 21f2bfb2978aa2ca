using Converter.Compute;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models.Running;
using Converter.TestSupport;

namespace Converter.Models.Tests.Forward;

/// <summary>
/// The CPU forward pass against transformers' float32 forward on the same checkpoint and input ids
/// (tests/data/reference/&lt;model&gt;.public.safetensors: input_ids, hidden.0..hidden.N, logits).
/// </summary>
public class ReferenceForwardTests
{
    public static IEnumerable<TestCaseData> Models()
    {
        // The rand-* references are plain float32 and we match them to float32 rounding. The trained models'
        // references were made with TF32 matmuls (see ReferencePrecisionTests), which moves every value by up to
        // ~5e-4 of its scale; there the bound is DESIGN.md's 1e-3.
        yield return new TestCaseData("tiny-llama", TrainedTolerance).SetName("TinyLlama");
        yield return new TestCaseData("rand-llama31", Float32Tolerance).SetName("RandLlama31");
        yield return new TestCaseData("rand-mistral", Float32Tolerance).SetName("RandMistral");
        yield return new TestCaseData("rand-qwen3", Float32Tolerance).SetName("RandQwen3");
        yield return new TestCaseData("small-qwen2", TrainedTolerance).SetName("SmallQwen2");
        // The other architectures' fixtures live in ../shared (kept out of the repository); skipped without it.
        foreach (var shared in SharedFixtures)
            yield return new TestCaseData(shared, Float32Tolerance).SetName("Shared_" + shared);
    }

    private const double Float32Tolerance = 1e-5;

    /// <summary>The random fixtures of ../shared/models whose forward we implement, beyond the four in tests/data.</summary>
    internal static readonly string[] SharedFixtures = ["rand-smollm3", "rand-gemma2", "rand-gemma3", "rand-phi3", "rand-glm4", "rand-olmo3", "rand-cohere", "rand-mixtral", "rand-qwen3-moe", "rand-glm4-moe", "rand-gpt-oss", "rand-deepseek-v3"];
    private const double TrainedTolerance = 1e-3;

    [TestCaseSource(nameof(Models))]
    public void HiddenStatesAndLogitsMatchTransformers(string name, double tolerance)
    {
        var (modelDir, referencePath) = Locate(name);
        AssertMatches(modelDir, referencePath, tolerance);
    }

    /// <summary>
    /// rand-gemma3 wrapped as a Gemma3ForConditionalGeneration checkpoint in either layout (renamed tensors, the text
    /// keys under text_config, a vision tower no text module reads) is the same language model: rand-gemma3's
    /// reference holds for it to the same tolerance.
    /// </summary>
    [TestCase(Gemma3Layout.Hub)]
    [TestCase(Gemma3Layout.Saved)]
    public void Gemma3MultimodalMatchesTheTextModelsReference(Gemma3Layout layout)
    {
        var (textModelDir, referencePath) = Locate("rand-gemma3");
        using var dir = new TempDirectory();
        Gemma3MultimodalFixture.Write(textModelDir, dir.Path, layout);
        AssertMatches(dir.Path, referencePath, Float32Tolerance);
    }

    private static void AssertMatches(string modelDir, string referencePath, double tolerance)
    {
        using var reference = SafetensorsFile.Open(referencePath);
        var ids = reference.ReadRaw<long>("input_ids").Select(checked(x => (int)x)).ToArray();

        var model = TransformerModel.FromConfig(ModelConfig.Load(modelDir));
        using var checkpoint = CheckpointReader.Open(modelDir);
        var result = ModelRunner.Run(model, checkpoint, SequenceBatch.FromTokens(ids));

        var hidden = result.HfHiddenStates();
        Assert.That(reference.TensorNames.Count(n => n.StartsWith("hidden.", StringComparison.Ordinal)), Is.EqualTo(hidden.Count),
            "reference has hidden.0 .. hidden.N for N layers");
        var failures = new List<string>();
        for (int i = 0; i < hidden.Count; i++)
            Compare(reference, $"hidden.{i}", hidden[i], tolerance, failures);
        Compare(reference, "logits", result.Logits, tolerance, failures);
        Assert.That(failures, Is.Empty);
    }

    /// <summary>Max |ours − reference| relative to the reference's max |value|; prints both.</summary>
    private static void Compare(SafetensorsFile reference, string tensor, Matrix actual, double tolerance, List<string> failures)
    {
        var expected = reference.ReadFloat32(tensor);
        Assert.That(reference.Info(tensor).Shape, Is.EqualTo(new long[] { actual.Rows, actual.Cols }), tensor);
        double maxError = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxError = Math.Max(maxError, Math.Abs(actual.Data[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        double relative = maxError / scale;
        TestContext.Out.WriteLine($"{tensor,-10} max abs error {maxError:E2}, max |ref| {scale:F3}, relative {relative:E2}");
        if (relative > tolerance)
            failures.Add($"{tensor}: max abs error {maxError:E2} is {relative:E2} of max |ref| {scale:F3}");
    }

    internal static (string ModelDir, string Reference) Locate(string name) => name switch
    {
        "tiny-llama" => (RepoPaths.SampleModel, Path.Combine(RepoPaths.Reference, "tiny-llama.public.safetensors")),
        _ when name == "small-qwen2" || SharedFixtures.Contains(name) =>
            (RepoPaths.RequireSharedModel(name), RepoPaths.RequireSharedReference($"{name}.public.safetensors")),
        _ => (RepoPaths.TestModel(name), Path.Combine(RepoPaths.Reference, $"{name}.public.safetensors")),
    };
}
