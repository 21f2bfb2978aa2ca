using Converter.Compute;
using Converter.Formats.Safetensors;

namespace Converter.Models.Running;

/// <summary>
/// Runs a whole model module after module, keeping only one module's weights in memory: each module not already
/// loaded is loaded from the checkpoint just before it runs and released right after. Modules the caller loaded
/// (e.g. with quantized weights swapped in) are used as they are and left loaded.
/// </summary>
public static class ModelRunner
{
    public static ModelRunResult Run(TransformerModel model, ITensorReader reader, SequenceBatch input, ILinearInputObserver? observer = null) =>
        Run(model, new CheckpointWeights(reader), input, observer);

    /// <summary>As above, with the parameters from any <see cref="IWeightSource"/> (e.g. a quantized checkpoint).</summary>
    public static ModelRunResult Run(TransformerModel model, IWeightSource weights, SequenceBatch input, ILinearInputObserver? observer = null)
    {
        var batch = input;
        var outputs = new List<Matrix>(model.Modules.Count);
        foreach (var module in model.Modules)
        {
            bool loadedHere = !module.IsLoaded;
            if (loadedHere)
                module.Load(weights);
            try
            {
                batch = module.Forward(batch, observer);
            }
            finally
            {
                if (loadedHere)
                    module.Release();
            }
            outputs.Add(batch.Values!);
        }
        return new ModelRunResult(model, outputs);
    }
}
