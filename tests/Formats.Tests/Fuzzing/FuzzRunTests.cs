using Converter.Formats.Safetensors;
using Converter.TestSupport.Fuzzing;

namespace Converter.Formats.Tests.Fuzzing;

/// <summary>The fuzz harness itself: it must notice each broken promise, or the fuzz tests prove nothing.</summary>
public class FuzzRunTests
{
    private const string File = "/models/x.safetensors";

    private static string? Judge(Exception e) => FuzzRun.UserError(e, File, typeof(SafetensorsFormatException));

    [Test]
    public void CountsSuccessesAndWellFormedRejections()
    {
        var run = new FuzzRun("self-test", TimeSpan.FromSeconds(10), 1 << 20);
        run.Case("works", () => { }, Judge);
        run.Case("rejected", () => throw new SafetensorsFormatException(File, "bad header"), Judge);
        Assert.That((run.Accepted, run.Rejected, run.Failures.Count), Is.EqualTo((1, 1, 0)));
    }

    [Test]
    public void ReportsAnyOtherExceptionAMultiLineMessageOrOneNotNamingTheFile()
    {
        var run = new FuzzRun("self-test", TimeSpan.FromSeconds(10), 1 << 20);
        run.Case("other type", () => throw new InvalidOperationException("boom"), Judge);
        run.Case("two lines", () => throw new FormatExceptionWithLines(), e => FuzzRun.UserError(e, File, typeof(FormatException)));
        run.Case("unnamed", () => throw new SafetensorsFormatException("/elsewhere", "bad"), Judge);
        Assert.That(run.Failures.Keys, Has.Some.StartWith("unexpected InvalidOperationException")
            .And.Some.Contains("not one line").And.Some.Contains("does not name " + File));
        Assert.That(run.Failures.Values, Has.Some.Contains("other type → InvalidOperationException: boom"));
    }

    [Test]
    public void ReportsAnAllocationOverTheCap()
    {
        var run = new FuzzRun("self-test", TimeSpan.FromSeconds(10), 1 << 20);
        run.Case("allocates 8 MB", () => GC.KeepAlive(new byte[8 << 20]), Judge);
        Assert.That(run.Failures.Keys, Has.One.StartWith("allocated"));
    }

    [Test]
    public void FailsAtOnceOnACaseThatDoesNotFinish()
    {
        var run = new FuzzRun("self-test", TimeSpan.FromMilliseconds(200), 1 << 20);
        var e = Assert.Throws<AssertionException>(() => run.Case("sleeps", () => Thread.Sleep(2000), Judge));
        Assert.That(e!.Message, Does.Contain("hang").And.Contain("sleeps"));
    }

    private sealed class FormatExceptionWithLines() : FormatException(File + ": line one\nline two");
}
