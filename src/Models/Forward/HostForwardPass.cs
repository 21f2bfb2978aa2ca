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
        var output = Matrix.Uninitialized(mq.Rows, shape.Heads * shape.ValueWidth);
        for (int r = 0; r < mq.Rows / tokens; r++)
        {
            // Every row is its own sequence starting at position 0.
            CausalAttention.Apply(mq.RowRange(r * tokens, tokens), mk.RowRange(r * tokens, tokens), mv.RowRange(r * tokens, tokens),
                output.RowRange(r * tokens, tokens), tokens, shape.Heads, shape.KvHeads, shape.HeadDim, shape.Window, shape.Scale, shape.SoftCap,
                shape.Sinks.Span, shape.ValueDim);
        }
        return new HostActivations(output);
    }

    public Activations Columns(Activations x, int heads, int offset, int width)
    {
        var m = Of(x);
        int part = HeadPart(m.Cols, heads, offset, width);
        var y = Matrix.Uninitialized(m.Rows, heads * width);
        for (int r = 0; r < m.Rows; r++)
        {
            for (int h = 0; h < heads; h++)
                m.Row(r).Slice(h * part + offset, width).CopyTo(y.Row(r).Slice(h * width, width));
        }
        return new HostActivations(y);
    }

    public Activations JoinHeads(Activations a, Activations b, int heads, bool sharedB)
    {
        Matrix ma = Of(a), mb = Of(b);
        int wa = HeadPart(ma.Cols, heads, 0, 0), wb = sharedB ? mb.Cols : HeadPart(mb.Cols, heads, 0, 0);
        if (ma.Rows != mb.Rows)
            throw new ArgumentException($"joining heads of {ma.ShapeText} and {mb.ShapeText}: the rows differ", nameof(b));
        var y = Matrix.Uninitialized(ma.Rows, heads * (wa + wb));
        for (int r = 0; r < ma.Rows; r++)
        {
            for (int h = 0; h < heads; h++)
            {
                var target = y.Row(r).Slice(h * (wa + wb), wa + wb);
                ma.Row(r).Slice(h * wa, wa).CopyTo(target);
                mb.Row(r).Slice(sharedB ? 0 : h * wb, wb).CopyTo(target[wa..]);
            }
        }
        return new HostActivations(y);
    }

    /// <summary>The width of each of <paramref name="heads"/> parts of a row of <paramref name="cols"/>, checked to hold [offset, offset + width).</summary>
    private static int HeadPart(int cols, int heads, int offset, int width)
    {
        if (heads <= 0 || cols % heads != 0 || offset < 0 || width < 0 || offset + width > cols / heads)
            throw new ArgumentException($"columns [{offset}, {offset + width}) of each of {heads} heads do not fit rows of {cols}");
        return cols / heads;
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

    public void Scale(Activations x, float factor)
    {
        var data = Of(x).Data;
        System.Numerics.Tensors.TensorPrimitives.Multiply(data, factor, data);
    }

    public void SoftCap(Activations x, float cap) => Compute.SoftCap.InPlace(Of(x).Data, cap);

    public TokenDiff[] Compare(Activations a, Activations b)
    {
        Matrix test = Of(a), reference = Of(b);
        if (test.Rows != reference.Rows || test.Cols != reference.Cols)
            throw new ArgumentException($"compared activations {test.ShapeText} and {reference.ShapeText} differ in shape");
        return TokenDiff.OfRows(test.Data, reference.Data, test.Cols);
    }

    public void Observe(ILinearInputObserver? observer, LinearGroup group, Activations x)
    {
        if (observer?.Observes(group) == true)
            observer.OnLinearInput(group, Of(x));
    }

    public Activations Zeros(int rows, int cols) => new HostActivations(new Matrix(rows, cols));

    public ExpertAssignment Route(Activations logits, RouterSpec router, ReadOnlyMemory<float> correctionBias, bool everyToken)
    {
        var scores = Of(logits);
        if (scores.Cols != router.Experts)
            throw new ArgumentException($"router logits {scores.ShapeText} do not have one column per expert ({router.Experts})", nameof(logits));
        var tokens = Enumerable.Range(0, router.Experts).Select(_ => new List<int>()).ToArray();
        var weights = Enumerable.Range(0, router.Experts).Select(_ => new List<float>()).ToArray();
        Span<int> chosen = stackalloc int[router.TopK];
        Span<float> chosenWeights = stackalloc float[router.TopK];
        for (int t = 0; t < scores.Rows; t++)
        {
            TopKRouter.Select(scores.Row(t), router, correctionBias.Span, chosen, chosenWeights);
            for (int e = 0; e < router.Experts; e++)
            {
                int slot = chosen.IndexOf(e);
                if (slot < 0 && !everyToken)
                    continue;
                tokens[e].Add(t);
                weights[e].Add(slot < 0 ? 0f : chosenWeights[slot]);
            }
        }
        return new HostAssignment(tokens.Select(l => l.ToArray()).ToArray(), weights.Select(l => l.ToArray()).ToArray());
    }

    public Activations Gather(Activations x, ExpertAssignment assignment, int expert)
    {
        var source = Of(x);
        var tokens = Of(assignment).Tokens[expert];
        var rows = Matrix.Uninitialized(tokens.Length, source.Cols);
        for (int i = 0; i < tokens.Length; i++)
            source.Row(tokens[i]).CopyTo(rows.Row(i));
        return new HostActivations(rows);
    }

    public void ScatterAdd(Activations target, Activations y, ExpertAssignment assignment, int expert)
    {
        Matrix t = Of(target), rows = Of(y);
        var a = Of(assignment);
        int[] tokens = a.Tokens[expert];
        float[] weights = a.Weights[expert];
        for (int i = 0; i < tokens.Length; i++)
        {
            if (weights[i] == 0f)
                continue;
            // transformers: final.index_add_(0, tokens, expert(x) * weight), i.e. the product rounded, then added.
            var row = t.Row(tokens[i]);
            var source = rows.Row(i);
            for (int c = 0; c < row.Length; c++)
                row[c] += source[c] * weights[i];
        }
    }

    /// <summary>Host matrices are the GC's: nothing to reuse.</summary>
    public Activations Load(ResidentStates states, IReadOnlyList<int> rows) => new HostActivations(states.Gather(rows));

    public void Store(Activations x, ResidentStates states, IReadOnlyList<int> rows)
    {
        var m = Of(x);
        if (m.Cols != states.Width || m.Rows != rows.Count * states.Tokens)
            throw new ArgumentException($"activations {m.ShapeText} are not {rows.Count} rows of ({states.Tokens}, {states.Width})", nameof(x));
        for (int i = 0; i < rows.Count; i++)
            states.WriteRow(rows[i], m.RowRange(i * states.Tokens, states.Tokens));
    }

    public IDisposable Temporaries() => NoScope.Instance;

    private static Matrix Of(Activations x) =>
        x is HostActivations host ? host.Matrix : throw new ArgumentException("activations of another backend reached the host pass", nameof(x));

    private static HostAssignment Of(ExpertAssignment x) =>
        x as HostAssignment ?? throw new ArgumentException("an expert assignment of another backend reached the host pass", nameof(x));

    /// <summary>Per expert: its tokens in ascending order and their routing weights.</summary>
    private sealed class HostAssignment(int[][] tokens, float[][] weights) : ExpertAssignment
    {
        public int[][] Tokens { get; } = tokens;

        public float[][] Weights { get; } = weights;

        public override int Experts => Tokens.Length;

        public override int Count(int expert) => Tokens[expert].Length;
    }

    private sealed class NoScope : IDisposable
    {
        public static NoScope Instance { get; } = new();

        public void Dispose()
        {
        }
    }

    private sealed class HostActivations(Matrix matrix) : Activations
    {
        public Matrix Matrix { get; } = matrix;

        public override int Rows => Matrix.Rows;

        public override int Cols => Matrix.Cols;
    }
}
