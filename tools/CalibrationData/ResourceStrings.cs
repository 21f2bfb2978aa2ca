using System.Resources;
using System.Runtime.Loader;

namespace Converter.Tools.CalibrationData;

/// <summary>
/// The string resources of an assembly (a satellite *.resources.dll or a main assembly): resource file name →
/// key → string. Each assembly is loaded into its own collectible context from bytes, so SDK assemblies never bind
/// to this tool's own dependencies and same-named satellites of different cultures do not collide.
/// </summary>
public static class ResourceStrings
{
    public static Dictionary<string, Dictionary<string, string>> Read(byte[] assemblyBytes)
    {
        var context = new AssemblyLoadContext("resources", isCollectible: true);
        try
        {
            var assembly = context.LoadFromStream(new MemoryStream(assemblyBytes));
            var result = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
            foreach (var name in assembly.GetManifestResourceNames().Where(n => n.EndsWith(".resources", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            {
                using var stream = assembly.GetManifestResourceStream(name)!;
                result[name] = Strings(stream);
            }
            return result;
        }
        catch (BadImageFormatException)
        {
            return [];
        }
        finally
        {
            context.Unload();
        }
    }

    /// <summary>The string entries of one .resources stream; other types (images, serialized objects) are skipped unread.</summary>
    private static Dictionary<string, string> Strings(Stream stream)
    {
        var strings = new Dictionary<string, string>(StringComparer.Ordinal);
        using var reader = new ResourceReader(stream);
        var keys = new List<string>();
        var e = reader.GetEnumerator();
        while (e.MoveNext())
            keys.Add((string)e.Key);
        foreach (var key in keys)
        {
            reader.GetResourceData(key, out var type, out var data);
            if (type != "ResourceTypeCode.String")
                continue;
            // A string resource is its UTF-8 bytes behind a 7-bit encoded length.
            using var r = new BinaryReader(new MemoryStream(data));
            strings[key] = r.ReadString();
        }
        return strings;
    }

    /// <summary>The culture of a satellite's resource name: "Microsoft.Build.Strings.de.resources" → "de".</summary>
    public static string NeutralName(string satelliteResource, string culture) =>
        satelliteResource.Replace("." + culture + ".resources", ".resources", StringComparison.Ordinal);

}
