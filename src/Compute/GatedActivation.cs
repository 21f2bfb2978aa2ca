namespace Converter.Compute;

/// <summary>The activation applied to a gated MLP's gate projection before it multiplies the up projection.</summary>
public enum MlpActivation
{
    /// <summary>SiLU, g·σ(g) (transformers' "silu").</summary>
    Silu,

    /// <summary>GELU with the tanh approximation (transformers' "gelu_pytorch_tanh", Gemma's).</summary>
    GeluTanh,
}

/// <summary>dest = act(gate) ⊙ up for a gated MLP.</summary>
public static class GatedActivation
{
    // √(2/π), the tanh approximation's constant (PyTorch's gelu(approximate="tanh")).
    private const float GeluScale = 0.7978845608028654f;
    private const float GeluCubic = 0.044715f;

    /// <summary><paramref name="dest"/> may alias <paramref name="gate"/>.</summary>
    public static void Apply(MlpActivation activation, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dest)
    {
        if (activation == MlpActivation.Silu)
        {
            SwiGlu.Apply(gate, up, dest);
            return;
        }
        if (gate.Length != up.Length || dest.Length != gate.Length)
            throw new ArgumentException($"GELU-gate of gate {gate.Length}, up {up.Length} into {dest.Length} values");
        for (int i = 0; i < gate.Length; i++)
            dest[i] = GeluTanh(gate[i]) * up[i];
    }

    /// <summary>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    public static float GeluTanh(float x) => 0.5f * x * (1f + MathF.Tanh(GeluScale * (x + GeluCubic * x * x * x)));
}
