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
        EnsureLoaded();
        var table = Table;
        var output = new Matrix(batch.TokenIds.Length, HiddenSize);
        for (int i = 0; i < batch.TokenIds.Length; i++)
        {
            int id = batch.TokenIds[i];
            if ((uint)id >= (uint)VocabSize)
                throw new ArgumentException($"token id {id} at row {i / batch.Tokens}, position {i % batch.Tokens} is outside the vocabulary (size {VocabSize})", nameof(batch));
            table.Row(id).CopyTo(output.Row(i));
        }
        if (scale != 1f)
            System.Numerics.Tensors.TensorPrimitives.Multiply(output.Data, scale, output.Data);
        return batch.WithValues(output);
    }
}
