using Converter.Formats.IO;

namespace Converter.Conversion.Samples;

/// <summary>
/// The defaults that travel inside Converter.Conversion.dll as resources (Conversion.csproj embeds them from samples/): the
/// calibration and evaluation texts and the sample model's tokenizer that `synth` writes beside its weights. Read
/// from the assembly, never looked up on disk, so an installed tool behaves the same in any folder as a clone does.
/// </summary>
public static class BuiltInSamples
{
    /// <summary>Resource names, the paths of the embedded files under samples/ (Conversion.csproj sets them as LogicalName).</summary>
    public const string CalibrationTextResource = "samples/data/calibration.txt";
    public const string EvaluationTextResource = "samples/data/eval-heldout.txt";

    /// <summary>The sample model of a clone (samples/tiny-llama): its tokenizer is built in, its weights are not.</summary>
    public const string SampleModel = "tiny-llama";

    /// <summary>The tokenizer files of samples/tiny-llama that <c>synth</c> copies, by output file name.</summary>
    public static readonly IReadOnlyList<string> TokenizerFiles = ["tokenizer.json", "tokenizer_config.json"];

    public static TextSource CalibrationText => Text(CalibrationTextResource);

    public static TextSource EvaluationText => Text(EvaluationTextResource);

    /// <summary>The sample tokenizer's files, name → bytes.</summary>
    public static IReadOnlyDictionary<string, byte[]> Tokenizer() =>
        TokenizerFiles.ToDictionary(f => f, f => Bytes($"samples/{SampleModel}/{f}"));

    private static TextSource Text(string resource) =>
        TextSource.FromResource(typeof(BuiltInSamples).Assembly, resource, "built-in " + resource);

    private static byte[] Bytes(string resource)
    {
        using var stream = typeof(BuiltInSamples).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"Converter.Conversion.dll lacks the built-in resource '{resource}'");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
