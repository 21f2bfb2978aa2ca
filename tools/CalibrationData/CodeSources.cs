using System.IO.Compression;

namespace Converter.Tools.CalibrationData;

/// <summary>
/// Source code in several languages: this repository's own C#, CUDA C, Python and Bash; the .NET SDK's project and
/// item templates (C#, F#, Visual Basic, Razor, XAML, JavaScript, CSS, HTML, project files; MIT) and its MSBuild
/// .targets/.props (XML; MIT). Each language has a byte budget, so C# does not crowd out the rest.
/// </summary>
public static class CodeSources
{
    public const string RepositorySource = "this repository (trellis)";
    public const string TemplatesSource = ".NET SDK templates";
    public const string MsBuildSource = ".NET SDK MSBuild targets";

    /// <summary>The repository's code is the project's own work, redistributed with the project.</summary>
    public const string RepositoryLicense = "this project's own code";

    /// <summary>Files are cut at line ends to at most this many characters (a row of 2048 tokens is about 6–8 KB of code).</summary>
    private const int DocumentChars = 8000;

    private static readonly Dictionary<string, string> RepositoryLanguages = new(StringComparer.Ordinal)
    {
        [".cs"] = "C#",
        [".cu"] = "CUDA C",
        [".py"] = "Python",
        [".sh"] = "Bash",
    };

    private static readonly HashSet<string> TemplateExtensions = new(StringComparer.Ordinal)
    {
        ".cs", ".fs", ".vb", ".razor", ".cshtml", ".xaml", ".js", ".css", ".html", ".csproj", ".fsproj", ".vbproj",
    };

    /// <summary>
    /// The repository's committed code under src/ and tools/ at HEAD, each language up to its budget. Committed files
    /// only, and refused while src/ or tools/ have uncommitted changes, so the set depends on a commit (which the
    /// manifest records) and not on whatever the working tree holds.
    /// </summary>
    public static List<SourceDocument> FromRepository(string repoRoot, IReadOnlyDictionary<string, long> budgetByLanguage, ICollection<SourceDocument>? heldOut = null)
    {
        if (Git(repoRoot, "status", "--porcelain", "--", "src", "tools").Trim().Length > 0)
            throw new InvalidOperationException($"{repoRoot}: src/ or tools/ have uncommitted changes; commit them first, the calibration set records the commit its code comes from");
        var byLanguage = new SortedDictionary<string, List<SourceDocument>>(StringComparer.Ordinal);
        var files = Git(repoRoot, "ls-tree", "-r", "--name-only", "HEAD", "--", "src", "tools").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var relative in files.Order(StringComparer.Ordinal))
        {
            if (!RepositoryLanguages.TryGetValue(Path.GetExtension(relative), out var language))
                continue;
            AddChunks(byLanguage, language, RepositorySource, RepositoryLicense, relative, File.ReadAllText(Path.Combine(repoRoot, relative)));
        }
        return [.. byLanguage.SelectMany(l => Budget.Take(l.Value, budgetByLanguage.GetValueOrDefault(l.Key, 0), heldOut))];
    }

    /// <summary>
    /// The last commit that changed src/ or tools/, whose code is what is read: a later commit of only the rebuilt data
    /// leaves it unchanged, so a rebuild there reproduces the manifest byte for byte.
    /// </summary>
    public static string RepositoryCommit(string repoRoot) => Git(repoRoot, "log", "-1", "--format=%H", "--", "src", "tools").Trim();

    private static string Git(string repoRoot, params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-C");
        start.ArgumentList.Add(repoRoot);
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        using var git = System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException("git could not be started");
        var output = git.StandardOutput.ReadToEnd();
        var error = git.StandardError.ReadToEnd();
        git.WaitForExit();
        return git.ExitCode == 0 ? output : throw new InvalidOperationException($"git {string.Join(' ', arguments)} in {repoRoot}: {error.Trim()}");
    }

    /// <summary>The SDK's template packages (templates/*/*.nupkg): their source files, third-party libraries and minified files left out.</summary>
    public static List<SourceDocument> FromTemplates(string sdkRoot, long budgetPerExtension, ICollection<SourceDocument>? heldOut = null)
    {
        var byExtension = new SortedDictionary<string, List<SourceDocument>>(StringComparer.Ordinal);
        foreach (var nupkg in Directory.EnumerateFiles(Path.Combine(sdkRoot, "templates"), "*.nupkg", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            using var zip = ZipFile.OpenRead(nupkg);
            foreach (var entry in zip.Entries.OrderBy(e => e.FullName, StringComparer.Ordinal))
            {
                var ext = Path.GetExtension(entry.FullName);
                // wwwroot/lib holds bundled third-party libraries (Bootstrap, jQuery), not the SDK's own text.
                if (!TemplateExtensions.Contains(ext) || entry.FullName.Contains("/lib/", StringComparison.Ordinal) || entry.FullName.Contains(".min.", StringComparison.Ordinal))
                    continue;
                using var reader = new StreamReader(entry.Open());
                AddChunks(byExtension, ext, TemplatesSource, "MIT", Path.GetFileName(nupkg) + "/" + entry.FullName, reader.ReadToEnd());
            }
        }
        return [.. byExtension.SelectMany(e => Budget.Take(e.Value, budgetPerExtension, heldOut))];
    }

    /// <summary>MSBuild .targets and .props files of the SDK (XML).</summary>
    public static List<SourceDocument> FromMsBuild(string sdkRoot, long budget, ICollection<SourceDocument>? heldOut = null)
    {
        var documents = new SortedDictionary<string, List<SourceDocument>>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFiles(Path.Combine(sdkRoot, "sdk"), "*.*", SearchOption.AllDirectories)
            .Where(p => p.EndsWith(".targets", StringComparison.Ordinal) || p.EndsWith(".props", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            AddChunks(documents, "xml", MsBuildSource, "MIT", Path.GetRelativePath(sdkRoot, path), File.ReadAllText(path));
        return documents.TryGetValue("xml", out var all) ? Budget.Take(all, budget, heldOut) : [];
    }

    private static void AddChunks(SortedDictionary<string, List<SourceDocument>> groups, string group, string source, string license, string id, string text)
    {
        text = text.Replace("\r\n", "\n", StringComparison.Ordinal).TrimStart('\uFEFF');
        if (!groups.TryGetValue(group, out var list))
            groups[group] = list = [];
        int chunk = 0;
        foreach (var piece in Budget.Chunks(text, DocumentChars))
            list.Add(new SourceDocument(source, license, $"{id}#{chunk++}", piece));
    }
}
