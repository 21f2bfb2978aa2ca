using System.Text;

namespace Converter.Formats.Tokenizers;

/// <summary>
/// GPT-2's reversible byte ↔ character map used by byte-level BPE: printable Latin-1 bytes ('!'..'~',
/// '¡'..'¬', '®'..'ÿ') stand for themselves and the remaining 68 bytes (controls, space, 0x7F–0xA0, 0xAD) are
/// shifted to U+0100.. in byte order, so every byte is one visible character (space becomes 'Ġ', '\n' 'Ċ').
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The character standing for each byte.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>The byte each alphabet character stands for, -1 for characters outside the alphabet.</summary>
    private static readonly short[] CharToByteTable = BuildCharToByte();

    public static bool TryGetByte(char c, out byte b)
    {
        if (c < CharToByteTable.Length && CharToByteTable[c] >= 0)
        {
            b = (byte)CharToByteTable[c];
            return true;
        }
        b = 0;
        return false;
    }

    /// <summary>The UTF-8 bytes of <paramref name="text"/>, each written as its alphabet character.</summary>
    public static string Encode(ReadOnlySpan<char> text)
    {
        // Words are short; the stack covers nearly all of them (a pre-tokenizer-free tokenizer sends whole texts).
        const int StackLimit = 256;
        int byteCount = Encoding.UTF8.GetByteCount(text);
        Span<byte> bytes = byteCount <= StackLimit ? stackalloc byte[byteCount] : new byte[byteCount];
        Span<char> chars = byteCount <= StackLimit ? stackalloc char[byteCount] : new char[byteCount];
        Encoding.UTF8.GetBytes(text, bytes);
        for (int i = 0; i < bytes.Length; i++)
            chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + shifted++);
        }
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var table = new short[512];
        Array.Fill(table, (short)-1);
        for (int b = 0; b < 256; b++)
            table[ByteToChar[b]] = (short)b;
        return table;
    }
}
