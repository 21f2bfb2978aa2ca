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

    /// <summary>
    /// The heads' attended values for the block's normed input <paramref name="x"/>, (rows·tokens, heads·value width):
    /// everything before the output projection, where a staged forward keeps it (<see cref="StashPoint.Attended"/>).
    /// </summary>
    Activations Attend(IForwardPass pass, Activations x, int tokens, ILinearInputObserver? observer);

    /// <summary>The output projection (rows·tokens, hidden) of <see cref="Attend"/>'s result, shown to the observer as its input.</summary>
    Activations Project(IForwardPass pass, Activations attended, ILinearInputObserver? observer);
}

public static class AttentionForward
{
    /// <summary>Attention output (rows·tokens, hidden) for the block's normed input <paramref name="x"/>.</summary>
    public static Activations Forward(this IAttention attention, IForwardPass pass, Activations x, int tokens, ILinearInputObserver? observer) =>
        attention.Project(pass, attention.Attend(pass, x, tokens, observer), observer);
}
