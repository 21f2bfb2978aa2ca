using Converter.Compute;

namespace Converter.Models.Modules;

/// <summary>
/// model.embed_tokens: token id → row of the (vocab, hidden) embedding matrix, times <paramref name="scale"/> (Gemma's
/// √hidden; 1 for most architectures).
/// </summary>
public sealed class EmbeddingModule(string name, int vocabSize, int hiddenSize, float scale = 1f) : ModelModule(name)
{
    private Matrix? _table;

    public int VocabSize { get; } = vocabSize;

    public int HiddenSize { get; } = hiddenSize;

    public override IEnumerable<string> TensorNames => [Models.TensorNames.Weight(Name)];

    public override bool IsLoaded => _table != null;

    /// <summary>The (vocab, hidden) table.</summary>
    public Matrix Table => _table ?? throw new InvalidOperationException($"module {Name} is not loaded");

    public override void Load(IWeightSource weights) =>
        _table = new Matrix(VocabSize, HiddenSize, WeightLoader.Read(weights.Tensors, Models.TensorNames.Weight(Name), VocabSize, HiddenSize));

    public override void Release() => _table = null;

    public override SequenceBatch Forward(SequenceBatch batch, ILinearInputObserver? observer = null)
    {
        var output = new Matrix(batch.TokenIds.Length, HiddenSize);
        for (int r = 0; r < batch.Rows; r++)
            Lookup(batch.TokenIds.AsSpan(r * batch.Tokens, batch.Tokens), output.Data.AsSpan(r * batch.Tokens * HiddenSize, batch.Tokens * HiddenSize), r);
        return batch.WithValues(output);
    }

    /// <summary>
    /// One row's states: the table's rows of <paramref name="ids"/>, scaled, written into <paramref name="destination"/>
    /// (ids.Length · hidden). <paramref name="row"/> names the row in the error for an id outside the vocabulary.
    /// </summary>
    public void Lookup(ReadOnlySpan<int> ids, Span<float> destination, int row)
    {
        EnsureLoaded();
        if (destination.Length != ids.Length * HiddenSize)
            throw new ArgumentException($"{ids.Length} tokens make {ids.Length * HiddenSize} values, not {destination.Length}", nameof(destination));
        var table = Table;
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)VocabSize)
                throw new ArgumentException($"token id {id} at row {row}, position {i} is outside the vocabulary (size {VocabSize})", nameof(ids));
            table.Row(id).CopyTo(destination.Slice(i * HiddenSize, HiddenSize));
        }
        if (scale != 1f)
            System.Numerics.Tensors.TensorPrimitives.Multiply(destination, scale, destination);
    }

    /// <summary>Whether a lookup can make a non-finite value: only through the scale (the table was checked finite when it was read).</summary>
    public bool Scales => scale != 1f;
}
