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

    /// <summary>
    /// Causal grouped-query attention within each row of <paramref name="tokens"/> tokens: q (rows·tokens,
    /// heads·headDim), k (…, kvHeads·headDim), v (…, kvHeads·valueWidth) → (…, heads·valueWidth).
    /// </summary>
    Activations Attend(Activations q, Activations k, Activations v, int tokens, AttentionShape shape);

    /// <summary>
    /// Columns [offset, offset + width) of each of the <paramref name="heads"/> equal parts of every row of x, side
    /// by side: (rows, heads·width). Latent attention splits its projections into nope, rope and value parts with it.
    /// </summary>
    Activations Columns(Activations x, int heads, int offset, int width);

    /// <summary>
    /// Per row and head h: [a_h | b_h] side by side, (rows, heads·(wa + wb)) for a (rows, heads·wa); b holds one part
    /// per head or, with <paramref name="sharedB"/>, one part (rows, wb) that every head takes (latent attention's
    /// single rope key).
    /// </summary>
    Activations JoinHeads(Activations a, Activations b, int heads, bool sharedB);

    /// <summary>In place: gate ← act(gate) ⊙ up; returns gate.</summary>
    Activations Gate(Activations gate, Activations up, MlpActivation activation);

    /// <summary>In place: target += x.</summary>
    void Add(Activations target, Activations x);

    /// <summary>In place: x ← factor · x (Cohere's logit scale).</summary>
    void Scale(Activations x, float factor);

    /// <summary>In place: x ← cap · tanh(x / cap) (Gemma's final logits, <see cref="Compute.SoftCap"/>).</summary>
    void SoftCap(Activations x, float cap);

    /// <summary>
    /// Each row's error sums of a test output <paramref name="a"/> against a reference <paramref name="b"/> of the same
    /// shape (<see cref="TokenDiff"/>, one per row of stacked tokens), made where the activations are: only the sums
    /// come to the host, not a head's 128k logits per token.
    /// </summary>
    TokenDiff[] Compare(Activations a, Activations b);

    /// <summary>Shows <paramref name="observer"/> the input of <paramref name="group"/>.</summary>
    void Observe(ILinearInputObserver? observer, LinearGroup group, Activations x);

    /// <summary>A (rows, cols) matrix of zeros.</summary>
    Activations Zeros(int rows, int cols);

    /// <summary>
    /// Routes every token (row of the router's <paramref name="logits"/>, one column per expert) to its top-k experts
    /// (<see cref="TopKRouter"/>). With <paramref name="everyToken"/> each expert's list holds every token, in order,
    /// the ones it was not chosen for with weight 0: a calibration pass then shows each expert all rows while the
    /// output stays the top-k mixture.
    /// </summary>
    /// <param name="correctionBias">Sigmoid routing's per-expert choice bias, or empty.</param>
    ExpertAssignment Route(Activations logits, RouterSpec router, ReadOnlyMemory<float> correctionBias, bool everyToken);

    /// <summary>The rows of <paramref name="x"/> that <paramref name="expert"/> runs on, in its list's order.</summary>
    Activations Gather(Activations x, ExpertAssignment assignment, int expert);

    /// <summary>
    /// In place: target[t] += w·y[i] for the i-th token t of <paramref name="expert"/>'s list and its weight w; a
    /// weight of exactly 0 (a token the expert was not chosen for) adds nothing, not even the NaN of 0·∞.
    /// </summary>
    void ScatterAdd(Activations target, Activations y, ExpertAssignment assignment, int expert);

    /// <summary>Rows <paramref name="rows"/> of <paramref name="states"/>, stacked in that order: (rows·tokens, width).</summary>
    Activations Load(ResidentStates states, IReadOnlyList<int> rows);

    /// <summary>Writes x's rows (tokens each, in order) over rows <paramref name="rows"/> of <paramref name="states"/>.</summary>
    void Store(Activations x, ResidentStates states, IReadOnlyList<int> rows);

    /// <summary>
    /// Activations made until the returned handle is disposed are temporaries: the backend may then reuse their
    /// memory (the GPU pass does, so that hundreds of experts need one expert's buffers), and none may be read again.
    /// </summary>
    IDisposable Temporaries();
}

/// <summary>
/// The tokens each expert of a mixture-of-experts block runs on, with their routing weights, held by the backend
/// that routed them (<see cref="IForwardPass.Route"/>). The list lengths are on the host, so a block can skip
/// experts that got no tokens and size the products of the others.
/// </summary>
public abstract class ExpertAssignment
{
    public abstract int Experts { get; }

    /// <summary>Tokens in <paramref name="expert"/>'s list.</summary>
    public abstract int Count(int expert);
}

/// <summary>
/// A backend that runs forward passes: uploads the input, runs the body's operations where the backend keeps its
/// activations, and brings the body's result back as a host matrix.
/// </summary>
public interface IForwardBackend
{
    Matrix Run(Matrix input, Func<IForwardPass, Activations, Activations> body);
}

/// <summary>
/// Heads, window (null: full), score scale (null: 1/√headDim), attention soft cap and learned sinks (gpt-oss: one
/// extra softmax logit per query head; empty when none) of one layer's attention; <paramref name="ValueDim"/> is the
/// width of each value head when it differs from the query/key width (latent attention), null when they are equal.
/// </summary>
public sealed record AttentionShape(int Heads, int KvHeads, int HeadDim, int? Window, float? Scale, float? SoftCap, int? ValueDim = null)
{
    public ReadOnlyMemory<float> Sinks { get; init; }

    /// <summary>Width of each value head and of each head of the output.</summary>
    public int ValueWidth => ValueDim ?? HeadDim;
}
