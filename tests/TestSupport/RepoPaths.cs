namespace Converter.TestSupport;

/// <summary>Locates the repository's own data (samples/, tests/data/) and the optional shared folder beside it.</summary>
public static class RepoPaths
{
    /// <summary>The directory holding Converter.sln, found by walking up from the test assembly.</summary>
    public static string Root { get; } = FindRoot();

    public static string Samples => Path.Combine(Root, "samples");
    public static string SampleModel => Path.Combine(Samples, "tiny-llama");
    public static string TestData => Path.Combine(Root, "tests", "data");
    public static string Reference => Path.Combine(TestData, "reference");
    public static string TestModel(string name) => Path.Combine(TestData, "models", name);

    /// <summary>
    /// The 50 MB small model lives only in the shared folder beside the checkout; tests that need it call
    /// this and are skipped (not failed) when it is absent, e.g. on CI.
    /// </summary>
    public static string RequireSharedModel(string name)
    {
        var dir = Path.GetFullPath(Path.Combine(Root, "..", "shared", "models", name));
        if (!Directory.Exists(dir))
            NUnit.Framework.Assert.Ignore($"shared model '{name}' not present at {dir}");
        return dir;
    }

    /// <summary>Same rule as <see cref="RequireSharedModel"/> for a reference file that only the shared folder holds.</summary>
    public static string RequireSharedReference(string file)
    {
        var path = Path.GetFullPath(Path.Combine(Root, "..", "shared", "reference", file));
        if (!File.Exists(path))
            NUnit.Framework.Assert.Ignore($"shared reference '{file}' not present at {path}");
        return path;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Converter.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("Converter.sln not found above " + AppContext.BaseDirectory);
    }
}
