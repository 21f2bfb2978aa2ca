using System.Buffers.Binary;
using System.Text;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Safetensors;

/// <summary>
/// Builds safetensors bytes by hand (length prefix + header text + data), independent of our writer, so that
/// reader tests and corrupt-file tests do not depend on the code under test.
/// </summary>
internal static class RawSafetensors
{
    public static byte[] Build(string headerJson, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    public static string Write(TempDirectory dir, string fileName, string headerJson, int dataBytes) =>
        Write(dir, fileName, headerJson, new byte[dataBytes]);

    public static string Write(TempDirectory dir, string fileName, string headerJson, byte[] data)
    {
        var path = dir.File(fileName);
        File.WriteAllBytes(path, Build(headerJson, data));
        return path;
    }
}
