using System.Text.RegularExpressions;

namespace Converter.Cuda.Tests;

/// <summary>
/// The <c>extern "C" __global__</c> kernels of a CUDA source as the source writes them: name and parameters (type
/// and name), read with a regular expression over the text (comments stripped first), independent of the C#
/// declarations it is compared with.
/// </summary>
internal static partial class KernelSignatures
{
    public sealed record Parameter(string CType, bool IsPointer, string Name);

    public sealed record Signature(string Name, IReadOnlyList<Parameter> Parameters);

    public static IReadOnlyList<Signature> Parse(string source)
    {
        var code = Comments().Replace(source, " ");
        return Kernels().Matches(code).Select(m => new Signature(m.Groups[1].Value, m.Groups[2].Value.Split(',').Select(ParseParameter).ToList())).ToList();
    }

    private static Parameter ParseParameter(string text)
    {
        var words = text.Replace("*", " * ").Split((char[])[' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries)
            .Where(w => w is not ("const" or "__restrict__")).ToList();
        bool pointer = words.Remove("*");
        return new Parameter(string.Join(' ', words[..^1]), pointer, words[^1]);
    }

    /// <summary>The C# type a parameter is declared with in CudaKernels (see CudaKernel): pointers are device addresses.</summary>
    public static Type? CSharpType(Parameter p) => p.IsPointer ? typeof(ulong) : p.CType switch
    {
        "int" => typeof(int),
        "long long" => typeof(long),
        "float" => typeof(float),
        "double" => typeof(double),
        _ => null,
    };

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex Comments();

    [GeneratedRegex(@"extern\s+""C""\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)", RegexOptions.Singleline)]
    private static partial Regex Kernels();
}
