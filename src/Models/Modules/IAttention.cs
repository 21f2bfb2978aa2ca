using Converter.Models.Forward;

namespace Converter.Models.Modules;

/// <summary>
/// The attention slot of a decoder block: grouped-query attention (<see cref="SelfAttention"/>) or DeepSeek's latent
/// attention (<see cref="LatentAttention"/>), chosen by <see cref="TransformerSpec.LatentAttention"/>.
/// </summary>
public interface IAttention
{
    /// <summary>Its quantized linears grouped by shared input, in the order its forward shows them to an observer.</summary>
    IReadOnlyList<LinearGroup> LinearGroups { get; }

    /// <summary>Checkpoint tensors it reads besides its groups' linears (q/k norms, an unquantized projection).</summary>
    IEnumerable<string> OtherTensors { get; }

    void Load(IWeightSource weights);

    void Release();

    /// <summary>Attention output (rows·tokens, hidden) for the block's normed input <paramref name="x"/>.</summary>
    Activations Forward(IForwardPass pass, Activations x, int tokens, ILinearInputObserver? observer);
}
