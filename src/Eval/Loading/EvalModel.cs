using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Formats.Tokenizers;
using Converter.Models;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Loading;

/// <summary>
/// A model directory opened for evaluation: config.json, the checkpoint and the source of its parameters — plain
/// Hugging Face weights, or EXL3 (any tensor named <c>*.trellis</c>, detection by presence as in exllamav3, §4.5)
/// whose linears are reconstructed as each module loads. Building it reads no weights.
/// </summary>
public sealed class EvalModel : IDisposable
{
    private EvalModel(string directory, ModelConfig config, TransformerModel model, ITensorReader checkpoint, IWeightSource weights,
        QuantizationSummary? quantization)
    {
        Directory = directory;
        Config = config;
        Model = model;
        Checkpoint = checkpoint;
        Weights = weights;
        Quantization = quantization;
    }

    public string Directory { get; }

    /// <summary>The directory's last path component, for tables.</summary>
    public string Name => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Directory)));

    public ModelConfig Config { get; }

    public ITensorReader Checkpoint { get; }

    public IWeightSource Weights { get; }

    public TransformerModel Model { get; }

    /// <summary>Bits, codebook and storage of a quantized model; null for an unquantized one.</summary>
    public QuantizationSummary? Quantization { get; }

    public bool IsQuantized => Quantization is not null;

    /// <param name="algebra">Where the linear layers' products run (the CPU when null).</param>
    /// <param name="blocks">Runs whole decoder blocks (a GPU); null runs them op by op through <paramref name="algebra"/>.</param>
    public static EvalModel Open(string directory, CodebookTableCache codebooks, Converter.Compute.IDenseAlgebra? algebra = null,
        Converter.Models.Forward.IForwardBackend? blocks = null)
    {
        var config = ModelConfig.Load(directory);
        // An FP8 reference reads dequantized (SourceCheckpoint); a quantized EXL3 model as stored.
        var checkpoint = SourceCheckpoint.Open(directory, config.Json);
        try
        {
            var model = TransformerModel.FromConfig(config, algebra, blocks);
            bool quantized = checkpoint.TensorNames.Any(n => n.EndsWith(".trellis", StringComparison.Ordinal));
            return quantized
                ? new EvalModel(directory, config, model, checkpoint, new Exl3WeightSource(checkpoint, codebooks), QuantizationSummary.Read(model, checkpoint, config))
                : new EvalModel(directory, config, model, checkpoint, new CheckpointWeights(checkpoint), null);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    private string TokenizerPath => Path.Combine(Directory, "tokenizer.json");

    public bool HasTokenizer => File.Exists(TokenizerPath);

    /// <summary>The directory's tokenizer.json; a clear error when it is missing.</summary>
    public Tokenizer LoadTokenizer()
    {
        var path = TokenizerPath;
        if (!File.Exists(path))
            throw new InvalidDataException($"{path}: missing tokenizer (needed to tokenize the evaluation text)");
        return Tokenizer.FromFile(path);
    }

    public void Dispose() => Checkpoint.Dispose();

    public override string ToString() => Directory;
}
