using System.Collections.Concurrent;

namespace Converter.Trellis.Codebooks;

/// <summary>
/// All 65536 decoded values of one codebook as float32 (exact fp16 values), the entries the Viterbi search compares
/// against (DESIGN.md "Conventions"), with the statistics of §1.5.
/// </summary>
public sealed class CodebookTable
{
    /// <summary>One entry per 16-bit state (§2.1, L = 16).</summary>
    public const int Size = 1 << 16;

    private readonly float[] _values;

    private CodebookTable(CodebookSpec spec, float[] values)
    {
        Spec = spec;
        _values = values;
        double sum = 0, sumSq = 0;
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (var v in values)
        {
            sum += v;
            sumSq += (double)v * v;
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        Mean = sum / Size;
        Rms = Math.Sqrt(sumSq / Size);
        Min = min;
        Max = max;
    }

    public CodebookSpec Spec { get; }
    public ReadOnlySpan<float> Values => _values;

    /// <summary>The values as memory, for encoders that keep a reference across calls.</summary>
    public ReadOnlyMemory<float> Memory => _values;
    public double Rms { get; }
    public double Mean { get; }
    public float Min { get; }
    public float Max { get; }

    public float this[int state] => _values[state];

    public static CodebookTable Build(CodebookSpec spec)
    {
        spec.Validate();
        var values = spec.Kind switch
        {
            CodebookKind.ThreeInst => CodebookDecoder.BuildValues(new ThreeInstCodebook()),
            CodebookKind.Mcg => CodebookDecoder.BuildValues(new McgCodebook(spec.Multiplier)),
            CodebookKind.Mul1 => CodebookDecoder.BuildValues(new Mul1Codebook(spec.Multiplier)),
            _ => throw new ArgumentOutOfRangeException(nameof(spec)),
        };
        return new CodebookTable(spec, values);
    }

    /// <summary>The table divided by a scale (e.g. its RMS, for unit-RMS distortion measurements).</summary>
    public float[] Scaled(double divisor)
    {
        var scaled = new float[Size];
        float inv = (float)(1.0 / divisor);
        for (int i = 0; i < Size; i++)
            scaled[i] = _values[i] * inv;
        return scaled;
    }
}

/// <summary>Builds each codebook table once per owner (a conversion or a command run) and hands out the same instance after.</summary>
public sealed class CodebookTableCache
{
    private readonly ConcurrentDictionary<CodebookSpec, Lazy<CodebookTable>> _tables = new();

    public CodebookTable Get(CodebookSpec spec) =>
        _tables.GetOrAdd(spec, s => new Lazy<CodebookTable>(() => CodebookTable.Build(s))).Value;
}
