using Converter.Eval.Loading;
using Converter.Formats.IO;

namespace Converter.Eval.Evaluation;

/// <summary>
/// The token rows every model of one evaluation sees, and the vocabulary their softmax runs over: the tokenizer's
/// actual vocabulary (exllamav3's actual_vocab_size), capped at the model's logit width.
/// </summary>
/// <param name="SourcePath">The text the rows were tokenized from, or the token ids file they were read from.</param>
public sealed record EvalInput(string SourcePath, IReadOnlyList<int[]> Rows, int Vocabulary)
{
    public int Length => Rows[0].Length;

    /// <summary>Tokenizes <paramref name="text"/> with <paramref name="model"/>'s tokenizer.</summary>
    public static EvalInput Load(EvalModel model, TextSource text, int rows, int length)
    {
        var tokenizer = model.LoadTokenizer();
        var ids = EvalRows.Build(tokenizer, text.ReadAll("evaluation text"), text.Name, rows, length);
        return new EvalInput(text.Name, ids, Math.Min(tokenizer.VocabSize, model.Model.Spec.VocabSize));
    }

    /// <summary>
    /// Exact ids, nothing added (no BOS). The softmax vocabulary is the one <see cref="Load"/> would use, so a row
    /// scores the same whether it came from the text or from its ids; a model without tokenizer.json scores over
    /// its whole vocab_size. Ids outside that vocabulary fail naming the file.
    /// </summary>
    public static EvalInput FromIds(EvalModel model, TokenIdsFile ids)
    {
        int vocabulary = model.Model.Spec.VocabSize;
        string what = $"the model's vocab_size {vocabulary}";
        if (model.HasTokenizer)
        {
            int tokenizer = model.LoadTokenizer().VocabSize;
            if (tokenizer < vocabulary)
                (vocabulary, what) = (tokenizer, $"tokenizer.json has {tokenizer} tokens, the model's vocab_size is {model.Model.Spec.VocabSize}");
        }
        ids.RequireBelow(vocabulary, what);
        return new EvalInput(ids.Path, ids.Rows, vocabulary);
    }
}
