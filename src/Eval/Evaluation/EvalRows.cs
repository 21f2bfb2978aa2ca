using Converter.Formats.Tokenizers;

namespace Converter.Eval.Evaluation;

/// <summary>
/// The evaluation rows of docs/exl3-format.md §6.1: the text tokenized once with the tokenizer's default special-token
/// handling (so BOS leads the first row only), cut into consecutive non-overlapping windows of <c>length</c> tokens,
/// the first <c>rows</c> of them. Like exllamav3 a window must end before the last token (start &lt; n − length).
/// </summary>
public static class EvalRows
{
    public static IReadOnlyList<int[]> Build(Tokenizer tokenizer, string text, string textPath, int rows, int length)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 2);
        var ids = tokenizer.Encode(text);
        int available = ids.Length > length ? (ids.Length - 1) / length : 0;
        if (available < rows)
        {
            throw new InvalidDataException(
                $"{textPath}: the text has {ids.Length} tokens, enough for {available} rows of {length}; {rows} were requested (lower --rows or --length)");
        }
        return Enumerable.Range(0, rows).Select(r => ids.AsSpan(r * length, length).ToArray()).ToList();
    }
}
