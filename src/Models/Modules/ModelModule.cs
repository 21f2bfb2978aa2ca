using Converter.Formats.Safetensors;
using Converter.Models.Forward;

namespace Converter.Models.Modules;

/// <summary>
/// One top-level piece of the model — the embedding, a decoder block, the final norm or the head — that can be
/// loaded from the checkpoint, run on a batch, and released on its own, so a caller can stream a model through
/// memory one module at a time.
/// </summary>
public abstract class ModelModule(string name)
{
    /// <summary>The HF module name (<c>model.embed_tokens</c>, <c>model.layers.3</c>, <c>model.norm</c>, <c>lm_head</c>).</summary>
    public string Name { get; } = name;

    /// <summary>The module's linear layers grouped by shared input; empty for modules without any.</summary>
    public virtual IReadOnlyList<LinearGroup> LinearGroups => [];

    public IEnumerable<Linear> Linears => LinearGroups.SelectMany(g => g.Linears);

    /// <summary>Every checkpoint tensor the module reads.</summary>
    public abstract IEnumerable<string> TensorNames { get; }

    public abstract bool IsLoaded { get; }

    /// <summary>Reads all parameters of a Hugging Face checkpoint as float32, replacing any already loaded.</summary>
    public void Load(ITensorReader reader) => Load(new CheckpointWeights(reader));

    /// <summary>Reads all parameters as float32 from <paramref name="weights"/>, replacing any already loaded.</summary>
    public abstract void Load(IWeightSource weights);

    /// <summary>Drops all parameters; <see cref="Load"/> can bring them back.</summary>
    public abstract void Release();

    /// <summary>
    /// Runs the module on every row of <paramref name="batch"/>; the input is not modified. The observer, when
    /// given, sees the input of each <see cref="LinearGroup"/> before it is multiplied.
    /// </summary>
    public abstract SequenceBatch Forward(SequenceBatch batch, ILinearInputObserver? observer = null);

    /// <summary>
    /// Runs the module on every row of <paramref name="batch"/> for <paramref name="observer"/> alone: the outputs are
    /// not wanted, so a module may stop once every group the observer watches has been shown its input (a sequential
    /// capture's early sublayers). The default runs the whole <see cref="Forward"/>.
    /// </summary>
    public virtual void Capture(SequenceBatch batch, ILinearInputObserver observer) => Forward(batch, observer);

    /// <summary>
    /// Runs the module on <paramref name="rows"/> of hidden states a backend holds (<see cref="ResidentStates"/>)
    /// without bringing them to the host, when the module's forward runs on that backend; null when it cannot (a
    /// module whose forward is on the host), and the caller moves the rows through host memory instead. A run that
    /// neither writes back nor keeps any output is a <see cref="Capture"/>, and may stop as early.
    /// </summary>
    public virtual ResidentOutput? TryForward(ResidentStates states, IReadOnlyList<int> rows, ILinearInputObserver? observer, ResidentRun run) => null;

    protected void EnsureLoaded()
    {
        if (!IsLoaded)
            throw new InvalidOperationException($"module {Name} is not loaded");
    }

    public override string ToString() => Name;
}
