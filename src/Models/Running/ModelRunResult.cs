using Converter.Compute;
using Converter.Models.Modules;

namespace Converter.Models.Running;

/// <summary>The output of every module of one <see cref="ModelRunner.Run"/>, in module order.</summary>
public sealed class ModelRunResult
{
    private readonly TransformerModel _model;

    internal ModelRunResult(TransformerModel model, IReadOnlyList<Matrix> outputs)
    {
        _model = model;
        Outputs = outputs;
    }

    /// <summary>Outputs aligned with <see cref="TransformerModel.Modules"/>: (rows·tokens, width) each.</summary>
    public IReadOnlyList<Matrix> Outputs { get; }

    /// <summary>(rows·tokens, vocab).</summary>
    public Matrix Logits => Outputs[^1];

    public Matrix OutputOf(ModelModule module)
    {
        int i = _model.IndexOf(module);
        return i >= 0 ? Outputs[i] : throw new ArgumentException($"module {module.Name} is not part of this model", nameof(module));
    }

    /// <summary>
    /// The hidden states as transformers' output_hidden_states reports them: after the embedding, after each of
    /// the first N−1 layers, and last the final-normed output of layer N (HF appends the normed last hidden state
    /// in place of the raw one), N + 1 in all.
    /// </summary>
    public IReadOnlyList<Matrix> HfHiddenStates()
    {
        int layers = _model.Layers.Count;
        var states = new List<Matrix>(layers + 1) { OutputOf(_model.Embedding) };
        for (int i = 0; i < layers - 1; i++)
            states.Add(OutputOf(_model.Layers[i]));
        states.Add(OutputOf(_model.FinalNorm));
        return states;
    }
}
