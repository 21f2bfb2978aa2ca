using System.Numerics.Tensors;

namespace Converter.Compute;

/// <summary>The gated activation of the Llama-family MLP.</summary>
public static class SwiGlu
{
    /// <summary>dest = SiLU(gate) ⊙ up, SiLU(g) = g·σ(g); <paramref name="dest"/> may alias <paramref name="gate"/>.</summary>
    public static void Apply(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dest)
    {
        if (gate.Length != up.Length || dest.Length != gate.Length)
            throw new ArgumentException($"SwiGLU of gate {gate.Length}, up {up.Length} into {dest.Length} values");
        // Chunked so the sigmoid can live in a small stack buffer instead of a second full-size activation.
        Span<float> sigmoid = stackalloc float[Math.Min(1024, gate.Length)];
        for (int start = 0; start < gate.Length; start += sigmoid.Length)
        {
            int count = Math.Min(sigmoid.Length, gate.Length - start);
            var s = sigmoid[..count];
            var g = gate.Slice(start, count);
            TensorPrimitives.Sigmoid(g, s);
            TensorPrimitives.Multiply(s, g, s);
            TensorPrimitives.Multiply(s, up.Slice(start, count), dest.Slice(start, count));
        }
    }
}
