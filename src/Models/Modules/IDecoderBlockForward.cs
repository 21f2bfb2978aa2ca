using Converter.Compute;

namespace Converter.Models.Modules;

/// <summary>
/// Runs a whole decoder block in one call on a backend that keeps its activations where its products run (a GPU),
/// instead of op by op on the host with a copy in and out around every product. The result must be the block's
/// forward (<see cref="DecoderBlock.Forward"/>) to float rounding, and the observer must see the same group inputs.
/// </summary>
public interface IDecoderBlockForward
{
    /// <summary>
    /// The output (rows·tokens, hidden) of <paramref name="block"/> (loaded) on the stacked hidden states
    /// <paramref name="x"/> of <paramref name="batch"/>. An <see cref="IHessianObserver"/> may be fed without the
    /// inputs leaving the device; any other observer gets them as host matrices.
    /// </summary>
    Matrix Forward(DecoderBlock block, SequenceBatch batch, Matrix x, ILinearInputObserver? observer);
}
