using Converter.Models.Forward;

namespace Converter.Models.Modules;

/// <summary>
/// The MLP slot of a decoder block, the dense gated MLP (<see cref="DenseMlp"/>) or a mixture of experts
/// (<see cref="SparseMoe"/>), chosen per layer by <see cref="TransformerSpec.IsSparse"/>.
/// </summary>
public interface IFeedForward
{
    /// <summary>Its quantized linears grouped by shared input, in the order its forward shows them to an observer.</summary>
    IReadOnlyList<LinearGroup> LinearGroups { get; }

    /// <summary>Checkpoint tensors it reads besides its groups' linears (a router's weight, a correction bias).</summary>
    IEnumerable<string> OtherTensors { get; }

    void Load(IWeightSource weights);

    void Release();

    /// <summary>Its output (rows·tokens, hidden) for the normed input <paramref name="x"/>.</summary>
    Activations Forward(IForwardPass pass, Activations x, ILinearInputObserver? observer);

    /// <summary>
    /// Shows <paramref name="observer"/> each group's input as <see cref="Forward"/> does, without the products only the
    /// output needs (the down projections): a capture of down_proj's input whose block output nobody reads.
    /// </summary>
    void Capture(IForwardPass pass, Activations x, ILinearInputObserver observer);
}
