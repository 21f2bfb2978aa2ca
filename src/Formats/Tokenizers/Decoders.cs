using System.Text;

namespace Converter.Formats.Tokenizers;

/// <summary>
/// One tokenizer.json "decoder" step: rewrites the list of token strings; the decoded text is the final list
/// concatenated.
/// </summary>
internal interface ITokenDecoder
{
    List<string> DecodeChain(List<string> tokens);
}

internal sealed class SequenceDecoder(IReadOnlyList<ITokenDecoder> decoders) : ITokenDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        foreach (var d in decoders)
            tokens = d.DecodeChain(tokens);
        return tokens;
    }
}

/// <summary>
/// Maps alphabet characters back to bytes and decodes all tokens' bytes together as UTF-8, invalid sequences
/// becoming U+FFFD. A token with a character outside the alphabet (an added token containing a space, say)
/// contributes its own UTF-8 bytes instead.
/// </summary>
internal sealed class ByteLevelDecoder : ITokenDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var token in tokens)
        {
            int mark = bytes.Count;
            bool inAlphabet = true;
            foreach (char c in token)
            {
                if (!ByteLevelAlphabet.TryGetByte(c, out byte b))
                {
                    inAlphabet = false;
                    break;
                }
                bytes.Add(b);
            }
            if (!inAlphabet)
            {
                bytes.RemoveRange(mark, bytes.Count - mark);
                bytes.AddRange(Encoding.UTF8.GetBytes(token));
            }
        }
        return [Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes))];
    }
}

/// <summary>'▁' back to spaces, except that every '▁' of the first token is dropped unless nothing was prepended.</summary>
internal sealed class MetaspaceDecoder(char replacement, PrependScheme prependScheme) : ITokenDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            result.Add(i == 0 && prependScheme != PrependScheme.Never
                ? tokens[i].Replace(replacement.ToString(), "", StringComparison.Ordinal)
                : tokens[i].Replace(replacement, ' '));
        }
        return result;
    }
}

/// <summary>Replaces a literal string or regex matches in each token.</summary>
internal sealed class ReplaceDecoder(ReplaceNormalizer replace) : ITokenDecoder
{
    public List<string> DecodeChain(List<string> tokens) => tokens.ConvertAll(replace.Normalize);
}

/// <summary>
/// Runs of "&lt;0xNN&gt;" tokens become the text their bytes spell; a run that is not valid UTF-8 becomes one
/// U+FFFD per byte.
/// </summary>
internal sealed class ByteFallbackDecoder : ITokenDecoder
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var run = new List<byte>();
        foreach (var token in tokens)
        {
            if (TryParseByteToken(token, out byte b))
            {
                run.Add(b);
                continue;
            }
            Flush(run, result);
            result.Add(token);
        }
        Flush(run, result);
        return result;
    }

    /// <summary>Whether <paramref name="token"/> is exactly "&lt;0xNN&gt;" with two hex digits.</summary>
    public static bool TryParseByteToken(string token, out byte value)
    {
        value = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }

    private static void Flush(List<byte> run, List<string> result)
    {
        if (run.Count == 0)
            return;
        try
        {
            result.Add(StrictUtf8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(run)));
        }
        catch (DecoderFallbackException)
        {
            for (int i = 0; i < run.Count; i++)
                result.Add("\uFFFD");
        }
        run.Clear();
    }
}

/// <summary>Concatenates all tokens into one.</summary>
internal sealed class FuseDecoder : ITokenDecoder
{
    public List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing occurrences of a character from each token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : ITokenDecoder
{
    public List<string> DecodeChain(List<string> tokens) => tokens.ConvertAll(token =>
    {
        int from = 0;
        while (from < start && from < token.Length && token[from] == content)
            from++;
        int to = token.Length;
        while (token.Length - to < stop && to > from && token[to - 1] == content)
            to--;
        return token[from..to];
    });
}
