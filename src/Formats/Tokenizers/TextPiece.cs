namespace Converter.Formats.Tokenizers;

/// <summary>
/// A piece of the input on its way through the pipeline: either text still to be normalized, pre-tokenized and
/// run through the model, or an added token already resolved to its id.
/// </summary>
/// <param name="Text">The piece's current (normalized / pre-tokenized) text.</param>
/// <param name="TokenId">The added token's id, or -1 for text.</param>
/// <param name="AtInputStart">Whether the piece begins at offset 0 of the input (Metaspace's "first" prepend scheme asks).</param>
internal readonly record struct TextPiece(string Text, int TokenId, bool AtInputStart)
{
    public bool IsToken => TokenId >= 0;

    public static TextPiece FromText(string text, bool atInputStart) => new(text, -1, atInputStart);
}
