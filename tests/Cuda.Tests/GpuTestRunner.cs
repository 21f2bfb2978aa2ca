using System.Diagnostics;
using System.Reflection;
using NUnit.Framework;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;

namespace Converter.Cuda.Tests;

/// <summary>
/// Runs this assembly's NUnit tests without the .NET SDK, for the GPU machine (tools/publish-gpu.sh publishes this
/// project self-contained). Supports what these tests use: fixtures with one-time set-up/tear-down, [Test] with
/// [Values] or [Range] on one parameter, [TestCase], [TestCaseSource]. An argument runs only the tests whose printed
/// name ("Class.Method: case" for a named case, e.g. "DecoderForwardTests.BlockOutputAndHessiansMatchTheHost: gpt-oss-like …")
/// contains it (a named case once printed without its method, so the method's name selected none of them). Prints one line per test and "N passed, N failed, N skipped";
/// exits 1 when any failed. `dotnet test` does not use this. `Converter.Cuda.Tests trellis ARGS…` runs the trellis CLI
/// instead, so that one self-contained program carries both to the GPU machine (the device tool carries at most
/// 64 MiB, and the repository with two trimmed programs is over it).
/// </summary>
public static class GpuTestRunner
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "trellis")
            return new Converter.Cli.TrellisCli(Converter.Cli.CliContext.ForConsole()).Invoke(args[1..]);
        string filter = args.Length > 0 ? args[0] : "";
        int passed = 0, failed = 0, skipped = 0;
        foreach (var type in typeof(GpuTestRunner).Assembly.GetTypes().Where(t => t is { IsClass: true, IsAbstract: false }))
        {
            var tests = type.GetMethods().Where(m => m.GetCustomAttributes<TestAttribute>().Any() || m.GetCustomAttributes<TestCaseSourceAttribute>().Any()
                || m.GetCustomAttributes<TestCaseAttribute>().Any()).ToList();
            if (tests.Count == 0)
                continue;
            var cases = tests.SelectMany(m => Expand(type, m)).Where(c => $"{type.Name}.{c.Name}".Contains(filter, StringComparison.Ordinal)).ToList();
            if (cases.Count == 0)
                continue;
            var fixture = Activator.CreateInstance(type)!;
            var setUp = Run(fixture, Methods<OneTimeSetUpAttribute>(type), null);
            foreach (var c in cases)
            {
                var clock = Stopwatch.StartNew();
                var outcome = setUp ?? Run(fixture, [c.Method], c.Arguments);
                string status = outcome switch { null => "PASS", IgnoreException => "SKIP", _ => "FAIL" };
                Console.Out.Flush();
                Console.WriteLine($"{status} {type.Name}.{c.Name} ({clock.ElapsedMilliseconds} ms){(outcome is null ? "" : ": " + outcome.Message.Trim())}");
                if (outcome is null)
                    passed++;
                else if (outcome is IgnoreException)
                    skipped++;
                else
                    failed++;
            }
            Run(fixture, Methods<OneTimeTearDownAttribute>(type), null);
        }
        Console.WriteLine($"{passed} passed, {failed} failed, {skipped} skipped");
        return failed == 0 ? 0 : 1;
    }

    private sealed record Case(string Name, MethodInfo Method, object?[]? Arguments);

    private static IEnumerable<Case> Expand(Type type, MethodInfo method)
    {
        foreach (var source in method.GetCustomAttributes<TestCaseSourceAttribute>())
        {
            var member = type.GetMethod(source.SourceName!, BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)!;
            foreach (TestCaseData data in (IEnumerable<TestCaseData>)member.Invoke(null, null)!)
                yield return new Case(data.TestName is { } name ? $"{method.Name}: {name}" : $"{method.Name}({string.Join(",", data.Arguments)})", method, data.Arguments);
        }
        foreach (var testCase in method.GetCustomAttributes<TestCaseAttribute>())
            yield return new Case($"{method.Name}({string.Join(",", testCase.Arguments)})", method, testCase.Arguments);
        if (!method.GetCustomAttributes<TestAttribute>().Any())
            yield break;
        var parameters = method.GetParameters();
        if (parameters.Length == 0)
        {
            yield return new Case(method.Name, method, null);
            yield break;
        }
        // [Values], [Range] and the like on a single parameter: NUnit's own data sources enumerate them.
        var dataSource = parameters.Length == 1 ? parameters[0].GetCustomAttributes().OfType<IParameterDataSource>().FirstOrDefault() : null;
        if (dataSource is null)
        {
            yield return new Case($"{method.Name} (unsupported by this runner: one parameter with [Values] or [Range] only)", method, null);
            yield break;
        }
        foreach (var v in dataSource.GetData(new ParameterWrapper(new MethodWrapper(type, method), parameters[0])))
            yield return new Case($"{method.Name}({v})", method, [v]);
    }

    /// <summary>Set-up methods base class first, tear-down methods derived class first, as NUnit orders them.</summary>
    private static IEnumerable<MethodInfo> Methods<T>(Type type) where T : Attribute
    {
        var methods = type.GetMethods().Where(m => m.GetCustomAttributes<T>().Any()).OrderBy(m => Depth(m.DeclaringType!));
        return typeof(T) == typeof(OneTimeTearDownAttribute) ? methods.Reverse() : methods;
    }

    private static int Depth(Type type)
    {
        int depth = 0;
        for (var t = type; t is not null; t = t.BaseType)
            depth++;
        return depth;
    }

    /// <summary>Runs the methods in order; returns the first failure (an assertion, an ignore, any exception) or null.</summary>
    private static Exception? Run(object fixture, IEnumerable<MethodInfo> methods, object?[]? arguments)
    {
        foreach (var m in methods)
        {
            try
            {
                m.Invoke(fixture, arguments);
            }
            catch (TargetInvocationException e) when (e.InnerException is SuccessException)
            {
            }
            catch (TargetInvocationException e)
            {
                return e.InnerException ?? e;
            }
        }
        return null;
    }
}
