using Converter.Compute;
using Converter.Exl3;
using Converter.Formats.Numerics;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Loading;

/// <summary>
/// The parameters of an EXL3-layout checkpoint (ours or exllamav3's) as float32: every linear whose tensors are
/// EXL3 (trellis + suh + svh, docs/exl3-format.md §4.1) is reconstructed with §4.3 and the codebook its marker names;
/// a linear stored as a plain <c>.weight</c> (e.g. an fp16 head, head_bits 16) loads as it is. The head is looked up
/// under <c>lm_head.*</c> first even when the embeddings are tied, since quantized models store it there (§4.2).
/// </summary>
public sealed class Exl3WeightSource(ITensorReader reader, CodebookTableCache codebooks) : IWeightSource
{
    public ITensorReader Tensors => reader;

    public void LoadLinear(Linear linear)
    {
        if (Exl3LinearReader.IsStoredIn(reader, linear.Name))
        {
            var (weight, bias) = Reconstruct(linear);
            linear.SetParameters(weight, bias);
        }
        else if (reader.Contains(TensorNames.Weight(linear.Name)))
        {
            var weight = WeightLoader.Read(reader, TensorNames.Weight(linear.Name), linear.OutFeatures, linear.InFeatures);
            var bias = linear.BiasTensor is { } b ? WeightLoader.Read(reader, b, linear.OutFeatures) : null;
            linear.SetParameters(new Matrix(linear.OutFeatures, linear.InFeatures, weight), bias);
        }
        else
        {
            // Only a tied head whose quantized copy is missing gets here; anything else names the missing tensor.
            linear.Load(reader);
        }
    }

    /// <summary>W (out, in) and the bias of an EXL3 linear, as the checkpoint stores them.</summary>
    public (Matrix Weight, float[]? Bias) Reconstruct(Linear linear)
    {
        var stored = Exl3LinearReader.Read(reader, linear.Name);
        var file = reader.FileOf(linear.Name + ".trellis");
        if (stored.PaddedIn < linear.InFeatures || stored.PaddedOut < linear.OutFeatures)
        {
            throw new SafetensorsFormatException(file, linear.Name + ".trellis",
                $"holds a ({stored.PaddedIn}, {stored.PaddedOut}) weight, too small for ({linear.InFeatures} in, {linear.OutFeatures} out) from config.json");
        }
        var hf = Exl3Reconstruction.HfWeight(stored, codebooks, linear.OutFeatures, linear.InFeatures);
        int bad = FiniteCheck.IndexOfNonFinite(hf);
        if (bad >= 0)
            throw new SafetensorsFormatException(file, linear.Name, $"reconstructs to a non-finite value at element {bad} (check suh/svh)");
        return (new Matrix(linear.OutFeatures, linear.InFeatures, hf), StoredBias(linear, stored));
    }

    /// <summary>The bias trimmed to the layer's width: ours is padded like the output dimension, exllamav3's may not be.</summary>
    private float[]? StoredBias(Linear linear, Exl3Linear stored)
    {
        var name = TensorNames.Bias(linear.Name);
        if (!linear.HasBias)
        {
            return stored.Bias is null ? null
                : throw new SafetensorsFormatException(reader.FileOf(name), name, "present, but config.json says the layer has no bias");
        }
        if (stored.Bias is null)
            throw new SafetensorsFormatException(reader.FileOf(linear.Name + ".trellis"), name, "missing, but config.json says the layer has a bias");
        if (stored.Bias.Length < linear.OutFeatures)
            throw new SafetensorsFormatException(reader.FileOf(name), name, $"has {stored.Bias.Length} values, the layer {linear.OutFeatures}");
        return stored.Bias.AsSpan(0, linear.OutFeatures).ToArray();
    }
}
