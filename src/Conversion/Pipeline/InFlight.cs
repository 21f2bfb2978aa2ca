using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace Converter.Conversion.Pipeline;

/// <summary>Runs numbered jobs with a bound on how many run at once, starting them in order.</summary>
public static class InFlight
{
    /// <summary>A module with at least this many linears is a mixture of experts (a dense layer has at most 7).</summary>
    public const int ManyLinears = 32;

    /// <summary>
    /// Linears of a module quantized at once: <paramref name="requested"/> when given (--linears-in-flight). Else on
    /// the CPU one (they would compete for the same cores); on a GPU two, so one linear's host work (regularization,
    /// the Hessian's rotation, packing, the proxy error) runs while another's LDLQ occupies the device, where one at a
    /// time leaves the GPU idle for about half of every layer; and in a module of experts 16, so that many same-shaped
    /// expert linears reach LDLQ together and share its encoder launches (CudaLdlqSolver batches them: one 768-wide
    /// expert's block fills 48 of an H200's 264 tile slots).
    /// </summary>
    public static int Linears(int requested, bool gpu, int linearsInModule) =>
        requested > 0 ? requested : !gpu ? 1 : linearsInModule >= ManyLinears ? 16 : 2;

    /// <summary>
    /// A sequential capture's stage of at most this many linears (llama's q/k/v) quantizes all of them at once on a GPU.
    /// With two in flight v waited for k's thread, so q, k and v ran three LDLQ loops of ~0.27 s one after the other
    /// on an 8B layer (session 17's timeline); at once they can share one batch of searches (CudaLdlqSolver batches
    /// problems of one input width). Larger stages (an MLP's gate/up/down is captured in two) keep the
    /// module's count: their linears are the largest, and their working sets are what the memory plan bounds.
    /// </summary>
    public const int WholeStage = 3;

    /// <summary>Whether the stages of a sequential capture take <see cref="InStage"/>'s rule: automatic in-flight counts on a GPU, no memory plan limiting them to one.</summary>
    public static bool WholeStages(int requested, bool gpu, bool sequential, bool oneInFlight) => requested == 0 && gpu && sequential && !oneInFlight;

    /// <summary>Linears of a stage of <paramref name="linearsInStage"/> quantized at once, given the module's count (<see cref="Linears"/>).</summary>
    public static int InStage(int moduleInFlight, int linearsInStage, bool wholeStages) =>
        wholeStages && linearsInStage <= WholeStage ? Math.Max(moduleInFlight, linearsInStage) : moduleInFlight;

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
