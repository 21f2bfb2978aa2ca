using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;

namespace Converter.Eval.Inspection;

/// <summary>
/// The original weights behind a converted model's stored linears, matched through both directories' declarations:
/// the converted model's n-th linear is the original's n-th, whatever each checkpoint calls it (a Gemma 3 source in
/// transformers 5's layout is written in the hub layout), and the original is read as its forward reads it: the rows
/// of a fused qkv_proj or gate_up_proj, the embedding for a tied head.
/// </summary>
public sealed class ReferenceWeights : IDisposable
{
    private readonly ITensorReader _reader;
    private readonly Dictionary<string, Linear> _byStoredName;

    private ReferenceWeights(ITensorReader reader, Dictionary<string, Linear> byStoredName)
    {
        _reader = reader;
        _byStoredName = byStoredName;
    }

    public static ReferenceWeights Open(string convertedDir, string referenceDir)
    {
        var converted = Linears(convertedDir);
        var original = Linears(referenceDir);
        if (converted.Count != original.Count || converted.Zip(original).Any(p => p.First.InFeatures != p.Second.InFeatures || p.First.OutFeatures != p.Second.OutFeatures))
            throw new InvalidDataException($"{convertedDir}: its linear layers do not match those of the reference {referenceDir}; is it a conversion of that model?");
        var reader = SourceCheckpoint.Open(referenceDir, ModelConfig.Load(referenceDir).Json);
        return new ReferenceWeights(reader, converted.Zip(original).ToDictionary(p => p.First.Name, p => p.Second, StringComparer.Ordinal));
    }

    /// <summary>The original (out, in) weight of the linear the converted model stores as <paramref name="storedName"/>.</summary>
    public (int InFeatures, int OutFeatures, float[] Weight) Read(string storedName)
    {
        if (!_byStoredName.TryGetValue(storedName, out var linear))
            throw new InvalidDataException($"{storedName}: stored in the converted model, but not a linear layer of its architecture");
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

    private static List<Linear> Linears(string directory) =>
        TransformerModel.FromConfig(ModelConfig.Load(directory)).Modules.SelectMany(m => m.Linears).ToList();
}
