using Converter.Compute;

namespace Converter.Models.Modules;

/// <summary>model.norm: the norm between the last decoder block and the head.</summary>
public sealed class FinalNormModule(string name, int hiddenSize, NormKind kind, float eps) : ModelModule(name)
{
    private float[]? _weight;

    public override IEnumerable<string> TensorNames => [Models.TensorNames.Weight(Name)];

    public override bool IsLoaded => _weight != null;

    public override void Load(IWeightSource weights) => _weight = WeightLoader.Read(weights.Tensors, Models.TensorNames.Weight(Name), hiddenSize);

    public override void Release() => _weight = null;

    public override SequenceBatch Forward(SequenceBatch batch, ILinearInputObserver? observer = null)
    {
        EnsureLoaded();
        var x = batch.RequireValues(Name);
        var y = new Matrix(x.Rows, x.Cols);
        Normalization.Apply(kind, x.Data, _weight!, [], eps, y.Data);
        return batch.WithValues(y);
    }
}
