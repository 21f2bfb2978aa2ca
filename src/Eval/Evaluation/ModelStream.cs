using Converter.Compute;
using Converter.Eval.Loading;
using Converter.Models;

namespace Converter.Eval.Evaluation;

/// <summary>
/// One model's activations for every evaluation row, advanced a module at a time: the module is loaded (its linears
/// reconstructed for a quantized model), run on every batch of rows, and released, so only one module's weights are
/// in memory. Rows run in batches of about <see cref="BatchTokens"/> tokens to bound the MLP's activations.
/// </summary>
public sealed class ModelStream
{
    /// <summary>Tokens per batch: large enough for efficient GEMMs, small enough for the MLP's activations.</summary>
    public const int BatchTokens = 4096;

    private SequenceBatch[] _batches;

    public ModelStream(EvalModel model, IReadOnlyList<int[]> rows)
    {
        Model = model;
        int perBatch = Math.Max(1, BatchTokens / rows[0].Length);
        _batches = rows.Chunk(perBatch).Select(chunk => SequenceBatch.FromTokens(chunk)).ToArray();
        foreach (var id in rows.SelectMany(r => r))
        {
            if ((uint)id >= (uint)model.Model.Spec.VocabSize)
                throw new InvalidDataException($"{model.Directory}: the tokenizer produces id {id}, beyond the model's vocab_size {model.Model.Spec.VocabSize}");
        }
    }

    public EvalModel Model { get; }

    /// <summary>The current activations, batch after batch.</summary>
    public IReadOnlyList<SequenceBatch> Batches => _batches;

    public int Tokens => _batches[0].Tokens;

    /// <summary>Runs module <paramref name="index"/> of the model on every batch.</summary>
    public void Advance(int index)
    {
        var module = Model.Model.Modules[index];
        module.Load(Model.Weights);
        try
        {
            _batches = _batches.Select(b => module.Forward(b)).ToArray();
        }
        finally
        {
            module.Release();
        }
    }

    /// <summary>Row <paramref name="row"/> (counting over all batches) of the current activations, (tokens, width).</summary>
    public (ReadOnlyMemory<float> Values, int Width, int[] Ids) Row(int row)
    {
        int perBatch = _batches[0].Rows;
        var batch = _batches[row / perBatch];
        int r = row % perBatch;
        Matrix values = batch.RequireValues(Model.Model.Modules[^1].Name);
        return (values.Data.AsMemory(r * Tokens * values.Cols, Tokens * values.Cols), values.Cols, batch.TokenIds.AsSpan(r * Tokens, Tokens).ToArray());
    }

    public int RowCount => _batches.Sum(b => b.Rows);
}
