using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;

namespace Converter.Eval.Inspection;

/// <summary>
/// The original weights of a converted model's linears, looked up through the original's architecture, so that a
/// linear the source stores inside a fused tensor (Phi-3's qkv_proj) or shares with the embedding (a tied head) is
/// read exactly as the forward reads it.
/// </summary>
public sealed class ReferenceWeights : IDisposable
{
    private readonly string _directory;
    private readonly CheckpointReader _reader;
    private readonly Dictionary<string, Linear> _linears;

    private ReferenceWeights(string directory, CheckpointReader reader, TransformerModel model)
    {
        _directory = directory;
        _reader = reader;
        _linears = model.Modules.SelectMany(m => m.Linears).ToDictionary(l => l.Name);
    }

    public static ReferenceWeights Open(string directory)
    {
        var model = TransformerModel.FromConfig(ModelConfig.Load(directory));
        return new ReferenceWeights(directory, CheckpointReader.Open(directory), model);
    }

    /// <summary>Unpadded input and output widths and the weight (out, in) of linear <paramref name="name"/>.</summary>
    public (int In, int Out, float[] Weight) Read(string name)
    {
        if (!_linears.TryGetValue(name, out var linear))
            throw new InvalidDataException($"{_directory}: the original model has no linear layer {name}; is it the model this was converted from?");
        linear.Load(_reader);
        try
        {
            return (linear.InFeatures, linear.OutFeatures, linear.Weight.Data);
        }
        finally
        {
            linear.Release();
        }
    }

    public void Dispose() => _reader.Dispose();
}
