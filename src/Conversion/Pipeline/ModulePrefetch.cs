using Converter.Formats.Safetensors;
using Converter.Models.Modules;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// Reads the next module's weights on a worker while the current module converts. On an H200 a llama-3-8b layer's
/// read (218M bf16 values into fresh float32 arrays) took 0.43 s between one layer's write and the next one's capture,
/// with the GPU idle: 7% of a 6.1 s layer at 128 × 512 (`convert --timeline`, docs/benchmarks.md). The host holds one
/// module's weights more for it (ResourceEstimate counts them).
/// </summary>
public sealed class ModulePrefetch(ITensorReader source) : IDisposable
{
    private ModelModule? _module;
    private Task? _load;

    /// <summary>Starts reading <paramref name="module"/>'s weights (a load still running for another module is waited for first).</summary>
    public void Start(ModelModule module)
    {
        Finish();
        _module = module;
        _load = Task.Run(() => module.Load(source));
    }

    /// <summary>
    /// Whether <paramref name="module"/>'s weights were read by <see cref="Start"/>: waits for the read, and rethrows
    /// its failure (a bad tensor is reported when its module is reached, as a read on this thread would be).
    /// </summary>
    public bool TryTake(ModelModule module)
    {
        if (!ReferenceEquals(module, _module) || _load is null)
            return false;
        var load = _load;
        (_module, _load) = (null, null);
        load.GetAwaiter().GetResult();
        return true;
    }

    /// <summary>Waits for a read still running and drops what it read (a job that stops before reaching that module).</summary>
    public void Dispose() => Finish();

    private void Finish()
    {
        if (_load is null)
            return;
        try
        {
            _load.Wait();
        }
        catch (AggregateException)
        {
            // Its module was never reached: nothing reports its failure.
        }
        _module!.Release();
        (_module, _load) = (null, null);
    }
}
