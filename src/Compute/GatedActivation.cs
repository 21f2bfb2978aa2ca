namespace Converter.Compute;

/// <summary>The activation applied to a gated MLP's gate projection before it multiplies the up projection.</summary>
public enum MlpActivation
{
    /// <summary>SiLU, g·σ(g) (transformers' "silu").</summary>
    Silu,

    /// <summary>GELU with the tanh approximation (transformers' "gelu_pytorch_tanh", Gemma's).</summary>
    GeluTanh,

    /// <summary>
    /// gpt-oss's clamped SwiGLU (GptOssExperts._apply_gate): g = min(gate, limit), u = clamp(up, −limit, limit),
    /// (u + 1)·g·σ(α·g) with α = 1.702 and limit = 7.
    /// </summary>
    ClampedSwiGlu,
}

/// <summary>dest = act(gate) ⊙ up for a gated MLP.</summary>
public static class GatedActivation
{
    // √(2/π), the tanh approximation's constant (PyTorch's gelu(approximate="tanh")).
    private const float GeluScale = 0.7978845608028654f;
    private const float GeluCubic = 0.044715f;

    /// <summary>The clamped SwiGLU's sigmoid slope, hard-coded in transformers' GptOssExperts (alpha).</summary>
    public const float ClampedSwiGluAlpha = 1.702f;

    /// <summary>The clamped SwiGLU's limit (gpt-oss's swiglu_limit, 7.0 in every released config).</summary>
    public const float ClampedSwiGluLimit = 7f;

    /// <summary><paramref name="dest"/> may alias <paramref name="gate"/>.</summary>
    public static void Apply(MlpActivation activation, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dest)
    {
        if (activation == MlpActivation.Silu)
        {
            SwiGlu.Apply(gate, up, dest);
            return;
        }
        if (gate.Length != up.Length || dest.Length != gate.Length)
            throw new ArgumentException($"{activation}-gate of gate {gate.Length}, up {up.Length} into {dest.Length} values");
        if (activation == MlpActivation.ClampedSwiGlu)
        {
            for (int i = 0; i < gate.Length; i++)
                dest[i] = ClampedSwiGlu(gate[i], up[i]);
            return;
        }
        for (int i = 0; i < gate.Length; i++)
            dest[i] = GeluTanh(gate[i]) * up[i];
    }

    /// <summary>(clamp(up, −7, 7) + 1)·(g·σ(1.702·g)), g = min(gate, 7), in transformers' order of operations.</summary>
    public static float ClampedSwiGlu(float gate, float up)
    {
        float g = MathF.Min(gate, ClampedSwiGluLimit);
        float u = Math.Clamp(up, -ClampedSwiGluLimit, ClampedSwiGluLimit);
        float glu = g * (1f / (1f + MathF.Exp(-(g * ClampedSwiGluAlpha))));
        return (u + 1f) * glu;
    }

    /// <summary>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    public static float GeluTanh(float x) => 0.5f * x * (1f + MathF.Tanh(GeluScale * (x + GeluCubic * x * x * x)));
}
