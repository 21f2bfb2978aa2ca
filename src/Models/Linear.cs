using Converter.Compute;
using Converter.Formats.Safetensors;

namespace Converter.Models;

/// <summary>
/// One linear layer y = x·Wᵀ + b with W in the HF layout (out, in) as float32. The weight can be replaced, e.g. by
/// the quantizer's reconstruction, and released to free memory; the layer's identity (name, shape) stays.
/// </summary>
public sealed class Linear
{
    private Matrix? _weight;
    private float[]? _bias;
    private readonly IDenseAlgebra _algebra;

    /// <param name="name">The HF module name, e.g. <c>model.layers.0.self_attn.q_proj</c>.</param>
    /// <param name="weightTensor">The tensor to load W from; defaults to name + ".weight" (a tied head reads the embedding's).</param>
    /// <param name="algebra">Where the product runs (the CPU when null).</param>
    /// <param name="fused">
    /// The layer is rows [Offset, Offset + out) of a fused source tensor of <c>Rows</c> rows (Phi-3's qkv_proj), read
    /// from <paramref name="weightTensor"/>; null when the tensor is the layer's own.
    /// </param>
    /// <param name="expert">
    /// The layer is one expert's columns of a 3-D expert tensor (gpt-oss), read from <paramref name="weightTensor"/>
    /// (or its MXFP4 form) and, with a bias, from the slice's bias tensor; null otherwise.
    /// </param>
    public Linear(string name, int inFeatures, int outFeatures, bool hasBias, string? weightTensor = null, IDenseAlgebra? algebra = null,
        FusedRows? fused = null, ExpertSlice? expert = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFeatures);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outFeatures);
        Name = name;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        HasBias = hasBias;
        WeightTensor = weightTensor ?? TensorNames.Weight(name);
        Fused = fused;
        Expert = expert;
        if (fused is not null && expert is not null)
            throw new ArgumentException($"{name}: a layer is either rows of a fused tensor or an expert's slice, not both", nameof(expert));
        if (expert is not null && hasBias != (expert.BiasTensor is not null))
            throw new ArgumentException($"{name}: an expert slice's bias tensor must be given exactly when the layer has a bias", nameof(expert));
        if (fused is { } f && (f.Offset < 0 || f.Offset + outFeatures > f.Rows))
            throw new ArgumentOutOfRangeException(nameof(fused), fused, $"{name}: rows {f.Offset}..{f.Offset + outFeatures} are not inside the fused tensor's {f.Rows}");
        if (fused is not null && hasBias)
            throw new ArgumentException($"{name}: a slice of a fused tensor cannot carry a bias", nameof(hasBias));
        _algebra = algebra ?? CpuDenseAlgebra.Instance;
    }

    public string Name { get; }

    public int InFeatures { get; }

    public int OutFeatures { get; }

    public bool HasBias { get; }

    public string WeightTensor { get; }

    /// <summary>Where in a fused source tensor the layer's rows are, or null.</summary>
    public FusedRows? Fused { get; }

    /// <summary>Which expert's columns of a 3-D expert tensor the layer is, or null.</summary>
    public ExpertSlice? Expert { get; }

    /// <summary>The source tensor of the bias: the layer's own <c>.bias</c>, or an expert slice's fused bias.</summary>
    public string? BiasTensor => HasBias ? Expert?.BiasTensor ?? TensorNames.Bias(Name) : null;

    /// <summary>Every source tensor name the layer may read: weight (or its MXFP4 blocks and scales) and bias.</summary>
    public IEnumerable<string> SourceTensors =>
        (Expert is null ? [WeightTensor] : ExpertSlice.StoredNames(WeightTensor)).Concat(BiasTensor is { } b ? [b] : []);

    public bool IsLoaded => _weight != null;

    /// <summary>W as (out, in).</summary>
    public Matrix Weight => _weight ?? throw NotLoaded();

    /// <summary>The bias (out values), or null when the layer has none.</summary>
    public float[]? Bias => HasBias ? _bias ?? throw NotLoaded() : null;

    /// <summary>Reads W (and b) from the checkpoint as float32.</summary>
    public void Load(ITensorReader reader)
    {
        if (Expert is { } e)
        {
            _weight = new Matrix(OutFeatures, InFeatures, e.ReadWeight(reader, WeightTensor, InFeatures, OutFeatures));
            _bias = HasBias ? e.ReadBias(reader, OutFeatures) : null;
            return;
        }
        _weight = Fused is { } f
            ? new Matrix(OutFeatures, InFeatures, WeightLoader.ReadRows(reader, WeightTensor, f.Rows, InFeatures, f.Offset, OutFeatures))
            : new Matrix(OutFeatures, InFeatures, WeightLoader.Read(reader, WeightTensor, OutFeatures, InFeatures));
        _bias = BiasTensor is { } b ? WeightLoader.Read(reader, b, OutFeatures) : null;
    }

    /// <summary>
    /// Takes W (out, in) and b computed elsewhere, e.g. decoded from a quantized checkpoint, replacing any loaded;
    /// <paramref name="bias"/> must be given exactly when the layer has one.
    /// </summary>
    public void SetParameters(Matrix weight, float[]? bias)
    {
        if (weight.Rows != OutFeatures || weight.Cols != InFeatures)
            throw new ArgumentException($"{Name}: weight {weight.ShapeText} is not ({OutFeatures}, {InFeatures})", nameof(weight));
        if (HasBias != (bias is not null))
            throw new ArgumentException($"{Name}: the layer {(HasBias ? "has" : "has no")} bias, but one was {(bias is null ? "not " : "")}given", nameof(bias));
        if (bias is not null && bias.Length != OutFeatures)
            throw new ArgumentException($"{Name}: bias has {bias.Length} values, not {OutFeatures}", nameof(bias));
        _weight = weight;
        _bias = bias;
    }

    /// <summary>
    /// The same layer (name, shape, bias, algebra) with another weight of its shape, e.g. the original one beside the
    /// reconstruction that replaced it (the head's comparison after quantizing); this layer is unchanged.
    /// </summary>
    public Linear WithWeight(Matrix weight)
    {
        var copy = new Linear(Name, InFeatures, OutFeatures, HasBias, WeightTensor, _algebra, Fused, Expert);
        copy.SetParameters(weight, Bias);
        return copy;
    }

    /// <summary>Replaces W (same shape), keeping the bias; the layer must be loaded.</summary>
    public void ReplaceWeight(Matrix weight)
    {
        if (weight.Rows != OutFeatures || weight.Cols != InFeatures)
            throw new ArgumentException($"{Name}: replacement weight {weight.ShapeText} is not ({OutFeatures}, {InFeatures})", nameof(weight));
        if (!IsLoaded)
            throw NotLoaded();
        _weight = weight;
    }

    public void Release()
    {
        _weight = null;
        _bias = null;
    }

    /// <summary>x (n, in) → x·Wᵀ + b (n, out).</summary>
    public Matrix Forward(Matrix x) => Forward(x, Weight);

    /// <summary>
    /// x·Wᵀ + b with another weight of the layer's shape in place of its own, e.g. the original one after a
    /// reconstruction replaced it (the head's reference logits, computed beside the quantized ones).
    /// </summary>
    public Matrix Forward(Matrix x, Matrix weight)
    {
        if (x.Cols != InFeatures)
            throw new ArgumentException($"{Name}: input {x.ShapeText} does not have {InFeatures} columns", nameof(x));
        if (weight.Rows != OutFeatures || weight.Cols != InFeatures)
            throw new ArgumentException($"{Name}: weight {weight.ShapeText} is not ({OutFeatures}, {InFeatures})", nameof(weight));
        // Every element is written by the product (both backends), so the buffer need not be zeroed first.
        var y = Matrix.Uninitialized(x.Rows, OutFeatures);
        _algebra.Linear(x.Data, weight.Data, Bias, y.Data, x.Rows, OutFeatures, InFeatures);
        return y;
    }

    public override string ToString() => $"{Name} ({OutFeatures}, {InFeatures}){(HasBias ? " +bias" : "")}";

    private InvalidOperationException NotLoaded() => new($"linear layer {Name} is not loaded");
}

/// <summary>A linear layer's rows inside a fused source tensor of <paramref name="Rows"/> rows.</summary>
public sealed record FusedRows(int Rows, int Offset);
