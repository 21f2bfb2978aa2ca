using Converter.Compute;

namespace Converter.Models.Forward;

/// <summary>
/// Activations of one forward pass on the backend that holds them (host memory or a GPU); only that backend's pass
/// reads them, and they are valid until the pass ends.
/// </summary>
public abstract class Activations
{
    /// <summary>Stacked tokens (rows·tokens).</summary>
    public abstract int Rows { get; }

    public abstract int Cols { get; }
}

/// <summary>
/// The operations a decoder block is written in (<see cref="Modules.DecoderBlock"/>), implemented once per backend:
/// <see cref="HostForwardPass"/> on the CPU and the CUDA pass on a GPU, so that an architecture's structure lives
/// in one forward and a backend only supplies kernels. Operations return fresh activations unless they say "in
/// place"; none modifies its inputs otherwise.
/// </summary>
public interface IForwardPass
{
    /// <summary>x·Wᵀ + b for a loaded linear layer.</summary>
    Activations Linear(Linear linear, Activations x);

    /// <summary>Normalizes every weight-wide slice of each row (a whole row, a head, or a projection).</summary>
    Activations Norm(Activations x, NormKind kind, ReadOnlyMemory<float> weight, float eps);

    /// <summary>In place: RoPE on x (rows·tokens, heads·headDim), each row of <paramref name="tokens"/> from position 0.</summary>
    void Rope(Activations x, int tokens, int heads, int headDim, RotaryTable table, RotaryPairing pairing);

    /// <summary>Causal grouped-query attention within each row of <paramref name="tokens"/> tokens.</summary>
    Activations Attend(Activations q, Activations k, Activations v, int tokens, AttentionShape shape);

    /// <summary>In place: gate ← act(gate) ⊙ up; returns gate.</summary>
    Activations Gate(Activations gate, Activations up, MlpActivation activation);

    /// <summary>In place: target += x.</summary>
    void Add(Activations target, Activations x);

    /// <summary>Shows <paramref name="observer"/> the input of <paramref name="group"/>.</summary>
    void Observe(ILinearInputObserver? observer, LinearGroup group, Activations x);
}

/// <summary>
/// A backend that runs forward passes: uploads the input, runs the body's operations where the backend keeps its
/// activations, and brings the body's result back as a host matrix.
/// </summary>
public interface IForwardBackend
{
    Matrix Run(Matrix input, Func<IForwardPass, Activations, Activations> body);
}

/// <summary>Heads, window (null: full), score scale (null: 1/√headDim) and attention soft cap of one layer's attention.</summary>
public sealed record AttentionShape(int Heads, int KvHeads, int HeadDim, int? Window, float? Scale, float? SoftCap);
