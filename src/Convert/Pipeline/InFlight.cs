using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace Converter.Cli.Pipeline;

/// <summary>Runs numbered jobs with a bound on how many run at once, starting them in order.</summary>
public static class InFlight
{
    /// <summary>
    /// Calls <paramref name="body"/> for 0..<paramref name="count"/>−1, at most <paramref name="degree"/> at once, each
    /// started after all lower numbers. One at a time runs on the calling thread. The first failure is rethrown as
    /// itself (not wrapped), so its one-line message reaches the user; jobs not yet started are skipped.
    /// </summary>
    public static void For(int count, int degree, Action<int> body)
    {
        if (degree <= 1 || count <= 1)
        {
            for (int i = 0; i < count; i++)
                body(i);
            return;
        }
        // NoBuffering hands out one number at a time, in order, so the jobs start in order too.
        var numbers = Partitioner.Create(Enumerable.Range(0, count), EnumerablePartitionerOptions.NoBuffering);
        try
        {
            Parallel.ForEach(numbers, new ParallelOptions { MaxDegreeOfParallelism = degree }, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }
}
