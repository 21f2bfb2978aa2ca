using System.Reflection;

namespace Converter.Formats.IO;

/// <summary>
/// A text the tools read whole (calibration, evaluation): a file the user named, or a text built into an assembly as
/// a resource (the defaults, which must work from any folder, not only inside a clone of the repository).
/// <see cref="Name"/> is what logs, reports and error messages show. Records, so bound options compare by value.
/// </summary>
public abstract record TextSource
{
    public abstract string Name { get; }

    /// <param name="what">What the text is for, in the error when a file is missing ("calibration text").</param>
    public abstract string ReadAll(string what);

    public static TextSource FromFile(string path) => new FileText(path);

    public static TextSource FromResource(Assembly assembly, string resourceName, string name) => new ResourceText(assembly, resourceName, name);

    public sealed override string ToString() => Name;

    private sealed record FileText(string Path) : TextSource
    {
        public override string Name => Path;

        public override string ReadAll(string what) => File.Exists(Path)
            ? File.ReadAllText(Path)
            : throw new FileNotFoundException($"{Path}: {what} not found", Path);
    }

    private sealed record ResourceText(Assembly Assembly, string ResourceName, string DisplayName) : TextSource
    {
        public override string Name => DisplayName;

        public override string ReadAll(string what)
        {
            // A missing resource is a build defect, not bad input.
            using var stream = Assembly.GetManifestResourceStream(ResourceName)
                ?? throw new InvalidOperationException($"{Assembly.GetName().Name} lacks the built-in {what} '{ResourceName}'");
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
    }
}
