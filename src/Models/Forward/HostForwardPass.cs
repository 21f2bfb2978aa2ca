using Converter.Compute;

namespace Converter.Models.Forward;

/// <summary>The forward's operations on host matrices, with <see cref="Compute"/>'s kernels; linears on their own algebra.</summary>
public sealed class HostForwardPass : IForwardPass, IForwardBackend
{
    public static HostForwardPass Instance { get; } = new();

    private HostForwardPass()
    {
    }

    public Matrix Run(Matrix input, Func<IForwardPass, Activations, Activations> body) =>
        Of(body(this, new HostActivations(input)));

    public Activations Linear(Linear linear, Activations x) => new HostActivations(linear.Forward(Of(x)));

    public Activations Norm(Activations x, NormKind kind, ReadOnlyMemory<float> weight, float eps)
    {
        var m = Of(x);
        var y = Matrix.Uninitialized(m.Rows, m.Cols);
        Normalization.Apply(kind, m.Data, weight.Span, [], eps, y.Data);
        return new HostActivations(y);
    }

    public void Rope(Activations x, int tokens, int heads, int headDim, RotaryTable table, RotaryPairing pairing)
    {
        var m = Of(x);
        for (int r = 0; r < m.Rows / tokens; r++)
            Compute.Rope.Apply(m.RowRange(r * tokens, tokens), tokens, heads, headDim, table, pairing);
    }

    public Activations Attend(Activations q, Activations k, Activations v, int tokens, AttentionShape shape)
    {
        Matrix mq = Of(q), mk = Of(k), mv = Of(v);
        var output = Matrix.Uninitialized(mq.Rows, mq.Cols);
        for (int r = 0; r < mq.Rows / tokens; r++)
        {
            // Every row is its own sequence starting at position 0.
            CausalAttention.Apply(mq.RowRange(r * tokens, tokens), mk.RowRange(r * tokens, tokens), mv.RowRange(r * tokens, tokens),
                output.RowRange(r * tokens, tokens), tokens, shape.Heads, shape.KvHeads, shape.HeadDim, shape.Window, shape.Scale, shape.SoftCap);
        }
        return new HostActivations(output);
    }

    public Activations Gate(Activations gate, Activations up, MlpActivation activation)
    {
        var g = Of(gate);
        GatedActivation.Apply(activation, g.Data, Of(up).Data, g.Data);
        return gate;
    }

    public void Add(Activations target, Activations x)
    {
        var t = Of(target);
        System.Numerics.Tensors.TensorPrimitives.Add(t.Data, Of(x).Data, t.Data);
    }

    public void Observe(ILinearInputObserver? observer, LinearGroup group, Activations x) => observer?.OnLinearInput(group, Of(x));

    private static Matrix Of(Activations x) =>
        x is HostActivations host ? host.Matrix : throw new ArgumentException("activations of another backend reached the host pass", nameof(x));

    private sealed class HostActivations(Matrix matrix) : Activations
    {
        public Matrix Matrix { get; } = matrix;

        public override int Rows => Matrix.Rows;

        public override int Cols => Matrix.Cols;
    }
}
