using System.Collections.Concurrent;
using System.Security.Cryptography;
using NUnit.Framework;
using static Converter.Convert.Tests.SyntheticModelFixture;

namespace Converter.Convert.Tests;

/// <summary>
/// One conversion per configuration per test run, shared read-only by every test that only reads a conversion's
/// output (its layout, inspect, eval, compare, the model card, a baseline to compare a resumed run with). Whole
/// conversions are what the suite's time goes to, so converting the same model at the same settings twice is
/// converting it once too many. The key is the model and the full `convert` argument list after
/// <see cref="SyntheticModelFixture.ConvertArgs"/>'s defaults, so two configurations that differ in any option
/// never share. Tests that watch a conversion happen (its log, a kill, a resume, a flag that changes what is
/// written) run their own.
/// </summary>
internal static class SharedConversions
{
    private static readonly ConcurrentDictionary<string, Lazy<Conversion>> Cache = new();

    /// <summary>
    /// The output folder of <c>convert <paramref name="model"/> --bits <paramref name="bits"/> <paramref name="extra"/></c>
    /// with <see cref="SyntheticModelFixture.ConvertArgs"/>'s small calibration, converted on first use (concurrent
    /// first users wait for the one conversion). Read it, never write to it: copy it first to change anything. A
    /// conversion that failed fails every test that asks for it, with its log.
    /// </summary>
    public static string Of(string model, double bits, params string[] extra)
    {
        string key = string.Join('\u0001', ConvertArgs(model, "", bits, extra));
        var conversion = Cache.GetOrAdd(key, _ => new Lazy<Conversion>(() => RunConversion(model, bits, extra), LazyThreadSafetyMode.ExecutionAndPublication)).Value;
        conversion.AssertUnchanged();
        return conversion.Dir;
    }

    /// <summary>The synthetic test-tiny model of <see cref="SyntheticModelFixture"/> at <paramref name="bits"/>, default settings.</summary>
    public static string OfSyntheticModel(double bits) => Of(ModelDir, bits);

    private static Conversion RunConversion(string model, double bits, string[] extra)
    {
        var dir = NewPath($"shared-{Path.GetFileName(model)}-{bits.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        var (code, _, log) = Run(ConvertArgs(model, dir, bits, extra));
        if (code != 0)
            throw new InvalidOperationException($"shared conversion of {model} at {bits} bpw {string.Join(' ', extra)} exited {code}:\n{log}");
        return new Conversion(dir, Fingerprint(dir));
    }

    /// <summary>Every file's name and SHA-256: the outputs are a few MB, so hashing them per use costs milliseconds.</summary>
    private static string Fingerprint(string dir) =>
        string.Join('\n', Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => Path.GetRelativePath(dir, f) + " " + System.Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))));

    private sealed record Conversion(string Dir, string Print)
    {
        /// <summary>A test that wrote into a shared output would make every later reader's result depend on test order.</summary>
        public void AssertUnchanged() =>
            Assert.That(Fingerprint(Dir), Is.EqualTo(Print), $"the shared conversion {Dir} was modified by an earlier test; copy it before changing it");
    }
}
