using Converter.Formats.Tokenizers;

namespace Converter.Conversion.Calibration;

/// <summary>
/// Cuts documents into calibration rows of a fixed length: each row starts with the ids the tokenizer puts before a
/// text (its BOS, where it adds one, so every row starts as the model's inputs do), then the tokens of documents in
/// the given order, documents continuing across rows rather than cut short, so no text is wasted. Texts are followed
/// by a blank line; dialogues are rendered through the chat template, whose turns carry their own end markers. When
/// the documents run out before the rows are filled, they are taken again from the start (<see cref="Passes"/>).
/// </summary>
public sealed class DocumentRows(Tokenizer tokenizer, ChatTemplate template)
{
    /// <summary>The ids the tokenizer's post-processor puts before a text (typically BOS), empty when it adds none.</summary>
    public int[] Lead { get; } = LeadOf(tokenizer);

    /// <summary>How many times the last <see cref="Cut"/> went through its documents (above 1: some were reused).</summary>
    public int Passes { get; private set; }

    public List<int[]> Cut(IReadOnlyList<CalibrationDocument> documents, int rows, int cols)
    {
        if (cols <= Lead.Length)
            throw new ArgumentOutOfRangeException(nameof(cols), $"calibration rows of {cols} tokens leave no room after the {Lead.Length} leading special token(s)");
        var result = new List<int[]>(rows);
        Passes = 0;
        if (rows == 0)
            return result;
        if (documents.Count == 0)
            throw new ArgumentException("no documents to cut rows from", nameof(documents));
        var row = new List<int>(cols);
        row.AddRange(Lead);
        int produced = 0;
        while (result.Count < rows)
        {
            Passes++;
            foreach (var document in documents)
            {
                var ids = tokenizer.Encode(TextOf(document), addSpecialTokens: false);
                produced += ids.Length;
                int at = 0;
                while (at < ids.Length && result.Count < rows)
                {
                    int take = Math.Min(cols - row.Count, ids.Length - at);
                    row.AddRange(ids.AsSpan(at, take));
                    at += take;
                    if (row.Count == cols)
                    {
                        result.Add([.. row]);
                        row.Clear();
                        row.AddRange(Lead);
                    }
                }
                if (result.Count == rows)
                    break;
            }
            // Documents that tokenize to nothing would loop forever.
            if (produced == 0)
                throw new InvalidDataException("calibration documents tokenize to no tokens");
        }
        return result;
    }

    /// <summary>The text a document contributes to the token stream.</summary>
    public string TextOf(CalibrationDocument document) => document.Messages is { } messages
        ? template.Render(messages) + (template.IsPlain ? "\n" : "")
        : document.Text + "\n\n";

    private static int[] LeadOf(Tokenizer tokenizer)
    {
        // The post-processor's ids before the text: compare a probe's ids with and without special tokens.
        var with = tokenizer.Encode("a");
        var without = tokenizer.Encode("a", addSpecialTokens: false);
        for (int lead = 0; lead + without.Length <= with.Length; lead++)
        {
            if (with.AsSpan(lead, without.Length).SequenceEqual(without))
                return with[..lead];
        }
        return [];
    }
}
