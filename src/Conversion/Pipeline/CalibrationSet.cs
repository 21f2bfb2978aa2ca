using Converter.Formats.Tokenizers;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// Calibration token rows: the text is tokenized once (tokenizer defaults, so BOS leads), cut into consecutive
/// windows of <c>cols</c> tokens, and <c>rows</c> of them are picked by a seeded shuffle, so a given text, tokenizer
/// and seed always give the same rows while still sampling the whole text.
/// </summary>
public static class CalibrationSet
{
    public static IReadOnlyList<int[]> Build(Tokenizer tokenizer, string text, string textPath, int rows, int cols, int seed)
    {
        if (rows < 1 || cols < 2)
            throw new ArgumentOutOfRangeException(nameof(rows), "calibration needs at least 1 row of at least 2 tokens");
        var ids = tokenizer.Encode(text);
        int windows = ids.Length / cols;
        if (windows < rows)
        {
            throw new InvalidDataException(
                $"{textPath}: calibration text has {ids.Length} tokens, enough for {windows} rows of {cols}; {rows} were requested (lower --cal-rows or --cal-cols)");
        }
        var order = Enumerable.Range(0, windows).ToArray();
        new Random(seed).Shuffle(order);
        return order.Take(rows).OrderBy(i => i).Select(i => ids.AsSpan(i * cols, cols).ToArray()).ToList();
    }
}
