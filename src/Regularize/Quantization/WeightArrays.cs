using Converter.Formats.Safetensors;

namespace Converter.Regularize.Quantization;

/// <summary>
/// Host arrays of a linear's size that live as long as a module's weights: the transposed W a held target keeps, which
/// later takes Q, which becomes the reconstruction swapped in for the forward. From
/// <see cref="TensorReaderExtensions.PinnedFromElements"/> values they go where the weights read from a checkpoint go,
/// the pinned-object heap, which the GC never compacts (as does a reconstruction made on the host, LinearReconstruction.ToHfLayout): in the large-object heap an 8B layer's reconstructions were
/// what the allocation-triggered compacting collections moved (58–186 ms with every thread stopped, 0.45 s of the
/// GPU's idle over two layers, session 30), and a dead one leaves room the next layer's same shape takes.
/// </summary>
public static class WeightArrays
{
    /// <summary>An array whose every value the caller writes.</summary>
    public static float[] Uninitialized(int length) => GC.AllocateUninitializedArray<float>(length, pinned: length >= TensorReaderExtensions.PinnedFromElements);

    /// <summary>An array of zeros (padding the caller leaves).</summary>
    public static float[] Zeroed(int length) => GC.AllocateArray<float>(length, pinned: length >= TensorReaderExtensions.PinnedFromElements);
}
