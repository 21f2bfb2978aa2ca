namespace Converter.TestSupport;

/// <summary>
/// The test tiers. The default run (the README's test command, CI) leaves out category <see cref="Category"/>: tests
/// that cost minutes of conversion and prove again what a faster default test proves already (each says which).
/// Every architecture and feature is still converted end to end in the default run; the plain
/// `dotnet test Converter.sln -c Release` runs the Slow tier too.
/// </summary>
public static class SlowTests
{
    public const string Category = "Slow";
}
