using System.Diagnostics;
using NUnit.Framework;

namespace Converter.TestSupport.Fuzzing;

/// <summary>
/// Runs fuzz cases against a reader and keeps its promise in check: every case either works, or fails with one of
/// the reader's user-facing exceptions whose one-line message names the file; no other exception, no case running
/// past a time limit, none allocating more than a cap (a header declaring a 10¹² element tensor must fail before
/// allocating it). Failures are collected, one per distinct kind with the first input that showed it, and reported
/// together at the end.
/// </summary>
public sealed class FuzzRun(string target, TimeSpan perCaseTimeout, long maxAllocatedBytes)
{
    private readonly Dictionary<string, string> _failures = [];
    private readonly Stopwatch _clock = new();

    public int Cases { get; private set; }

    public int Accepted { get; private set; }

    public int Rejected { get; private set; }

    /// <summary>Each distinct failure so far (its kind and where) and the first input that showed it.</summary>
    public IReadOnlyDictionary<string, string> Failures => _failures;

    /// <summary>
    /// A judge of rejections: null when <paramref name="e"/> is one of <paramref name="types"/> and its message is one
    /// line naming <paramref name="file"/>, else what is wrong with it.
    /// </summary>
    public static string? UserError(Exception e, string file, params Type[] types)
    {
        if (!types.Any(t => t.IsInstanceOfType(e)))
            return $"unexpected {e.GetType().Name}";
        if (e.Message.Contains('\n') || e.Message.Contains('\r'))
            return $"{e.GetType().Name} message is not one line";
        if (!e.Message.Contains(file, StringComparison.Ordinal))
            return $"{e.GetType().Name} message does not name {file}";
        return null;
    }

    /// <summary>
    /// Runs <paramref name="body"/> on a worker under the time limit; <paramref name="judge"/> returns null for an
    /// acceptable rejection, else the problem. <paramref name="description"/> says how the input was made.
    /// </summary>
    public void Case(string description, Action body, Func<Exception, string?> judge)
    {
        Cases++;
        _clock.Start();
        long allocated = 0;
        Exception? thrown = null;
        // A thread of its own, not a task: Task.Wait may run a task inline on the waiting thread, past any timeout.
        var worker = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                body();
            }
            catch (Exception e)
            {
                thrown = e;
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        })
        { IsBackground = true, Name = "fuzz case" };
        worker.Start();
        bool finished = worker.Join(perCaseTimeout);
        _clock.Stop();
        if (!finished)
        {
            // The worker cannot be stopped (it is a background thread, so it will not keep the process alive); report now.
            Fail($"hang (over {perCaseTimeout.TotalSeconds:0} s)", description);
            Assert.Fail(Report());
        }
        if (allocated > maxAllocatedBytes)
            Fail($"allocated {allocated:N0} bytes (cap {maxAllocatedBytes:N0})", description);

        if (thrown is { } e)
        {
            if (judge(e) is { } problem)
                Fail($"{problem} at {TopFrame(e)}", $"{description} → {e.GetType().Name}: {e.Message}");
            else
                Rejected++;
        }
        else
        {
            Accepted++;
        }
    }

    /// <summary>
    /// Fails the test with every distinct failure, and unless the run both accepted and rejected inputs (a fuzzer
    /// that only produces garbage, or never breaks anything, tests little).
    /// </summary>
    public void AssertClean(int minAccepted = 1, int minRejected = 1)
    {
        TestContext.Out.WriteLine($"{target}: {Cases} cases, {Accepted} accepted, {Rejected} rejected, {_failures.Count} distinct failures, {_clock.Elapsed.TotalSeconds:0.0} s");
        Assert.That(_failures, Is.Empty, Report());
        Assert.That(Accepted, Is.GreaterThanOrEqualTo(minAccepted), $"{target}: too few mutated inputs were accepted to test the success path");
        Assert.That(Rejected, Is.GreaterThanOrEqualTo(minRejected), $"{target}: too few mutated inputs were rejected");
    }

    private void Fail(string kind, string description) => _failures.TryAdd(kind, description);

    private string Report() =>
        $"{target}: {_failures.Count} distinct failures in {Cases} cases:\n" +
        string.Join("\n", _failures.Select(f => $"  {f.Key}\n    input: {f.Value}"));

    /// <summary>The innermost frame in our own code, so that one bug reached by many inputs is reported once.</summary>
    private static string TopFrame(Exception e)
    {
        var frames = new StackTrace(e, fNeedFileInfo: false).GetFrames();
        var ours = frames.FirstOrDefault(f => f.GetMethod()?.DeclaringType?.FullName?.StartsWith("Converter.", StringComparison.Ordinal) == true);
        var method = (ours ?? frames.FirstOrDefault())?.GetMethod();
        return method == null ? "(no stack)" : $"{method.DeclaringType?.Name}.{method.Name}";
    }
}
