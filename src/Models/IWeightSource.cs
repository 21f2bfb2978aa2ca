using Converter.Formats.Safetensors;

namespace Converter.Models;

/// <summary>
/// Where a module's parameters come from. A Hugging Face checkpoint holds every linear layer as a plain
/// <c>.weight</c> (<see cref="CheckpointWeights"/>); a quantized checkpoint stores them in another form that is
/// decoded to float32 here, while the other parameters (embedding, norms) are read by name from <see cref="Tensors"/>.
/// </summary>
public interface IWeightSource
{
    /// <summary>The checkpoint's tensors, for the parameters that are not linear layers.</summary>
    ITensorReader Tensors { get; }

    /// <summary>Gives <paramref name="linear"/> its weight (out, in) and bias as float32.</summary>
    void LoadLinear(Linear linear);
}

/// <summary>A Hugging Face checkpoint: every linear reads its <see cref="Linear.WeightTensor"/> and bias.</summary>
public sealed class CheckpointWeights(ITensorReader reader) : IWeightSource
{
    public ITensorReader Tensors => reader;

    public void LoadLinear(Linear linear) => linear.Load(reader);
}
