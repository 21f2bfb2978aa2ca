using Converter.Eval.Loading;

namespace Converter.Eval.Evaluation;

/// <summary>
/// The token rows every model of one evaluation sees, and the vocabulary their softmax runs over: the tokenizer's
/// actual vocabulary (exllamav3's actual_vocab_size), capped at the model's logit width.
/// </summary>
public sealed record EvalInput(string TextPath, IReadOnlyList<int[]> Rows, int Vocabulary)
{
    public int Length => Rows[0].Length;

    /// <summary>Tokenizes <paramref name="textPath"/> with <paramref name="model"/>'s tokenizer.</summary>
    public static EvalInput Load(EvalModel model, string textPath, int rows, int length)
    {
        var tokenizer = model.LoadTokenizer();
        return new EvalInput(textPath, EvalRows.FromFile(tokenizer, textPath, rows, length), Math.Min(tokenizer.VocabSize, model.Model.Spec.VocabSize));
    }
}
