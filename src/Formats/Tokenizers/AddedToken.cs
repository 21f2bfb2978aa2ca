namespace Converter.Formats.Tokenizers;

/// <summary>
/// A token of tokenizer.json's "added_tokens": matched in the input before the model sees it and mapped
/// straight to <see cref="Id"/>.
/// </summary>
/// <param name="Id">The token id.</param>
/// <param name="Content">The text the token stands for.</param>
/// <param name="Special">Control token (BOS, EOS, …): dropped by <see cref="Tokenizer.Decode"/> when asked to skip special tokens.</param>
/// <param name="SingleWord">Only matches where it is not part of a longer word.</param>
/// <param name="LStrip">Swallows the whitespace before it.</param>
/// <param name="RStrip">Swallows the whitespace after it.</param>
/// <param name="Normalized">Matched in the normalized text (as the normalizer rewrites its content) rather than the raw input.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord, bool LStrip, bool RStrip, bool Normalized);
