using System.Runtime.InteropServices;

namespace Converter.Formats.Safetensors;

/// <summary>
/// A block-scaled FP8 checkpoint (<see cref="BlockScaledFp8"/>) seen as a plain one: every float8_e4m3fn
/// <c>X.weight</c> that has an <c>X.weight_scale_inv</c> reads as its dequantized float32 values (dtype F32, same
/// shape), and the scale tensors are consumed, not listed, so nothing downstream copies them. Other tensors pass
/// through unchanged. A dequantized tensor is computed on its first read and kept until another one is read (reads
/// come a tensor at a time, or a window at a time of the same tensor).
/// </summary>
public sealed class Fp8DequantizedReader : ITensorReader
{
    /// <summary>The name suffix of a weight's block scales.</summary>
    public const string ScaleSuffix = "_scale_inv";

    private readonly ITensorReader _inner;
    private readonly int _blockRows, _blockCols;
    private readonly Dictionary<string, string> _scaleOf;
    private readonly Lock _lock = new();
    private (string Name, float[] Values)? _last;

    /// <param name="inner">The checkpoint; disposed with this reader.</param>
    public Fp8DequantizedReader(ITensorReader inner, int blockRows, int blockCols)
    {
        _inner = inner;
        _blockRows = blockRows;
        _blockCols = blockCols;
        _scaleOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in inner.TensorNames)
        {
            if (!name.EndsWith(ScaleSuffix, StringComparison.Ordinal))
                continue;
            string weight = name[..^ScaleSuffix.Length];
            if (!inner.Contains(weight))
                throw new SafetensorsFormatException(inner.FileOf(name), name, $"block scales without their weight '{weight}'");
            var info = inner.Info(weight);
            if (info.DType != DType.F8_E4M3 || info.Rank != 2)
                throw new SafetensorsFormatException(inner.FileOf(weight), weight, $"has block scales '{name}' but is {info.DType.SafetensorsName()} {info.ShapeText}, not a 2-D F8_E4M3 matrix");
            var scales = inner.Info(name);
            long expectedRows = BlockScaledFp8.BlockCount((int)info.Shape[0], blockRows), expectedCols = BlockScaledFp8.BlockCount((int)info.Shape[1], blockCols);
            if (scales.Rank != 2 || scales.Shape[0] != expectedRows || scales.Shape[1] != expectedCols)
                throw new SafetensorsFormatException(inner.FileOf(name), name,
                    $"shape {scales.ShapeText}, but {weight} {info.ShapeText} in {blockRows}×{blockCols} blocks needs ({expectedRows}, {expectedCols})");
            _scaleOf[weight] = name;
        }
        var hidden = _scaleOf.Values.ToHashSet(StringComparer.Ordinal);
        TensorNames = inner.TensorNames.Where(n => !hidden.Contains(n)).ToArray();
    }

    /// <summary>Weights read dequantized (the ones with block scales).</summary>
    public IReadOnlyCollection<string> DequantizedWeights => _scaleOf.Keys;

    public IReadOnlyList<string> TensorNames { get; }

    public bool Contains(string name) => _inner.Contains(name) && !IsScale(name);

    public void ReleaseResidentPages() => _inner.ReleaseResidentPages();

    public TensorInfo Info(string name)
    {
        if (IsScale(name))
            throw new SafetensorsFormatException(_inner.FileOf(name), name, "block scales are consumed by their weight, not read on their own");
        var info = _inner.Info(name);
        if (_scaleOf.ContainsKey(name))
            return info with { DType = DType.F32, ByteLength = info.ElementCount * sizeof(float) };
        // In a block-scaled checkpoint raw fp8 codes are not the weights; reading them unscaled would be silently wrong.
        if (info.DType == DType.F8_E4M3)
            throw new SafetensorsFormatException(_inner.FileOf(name), name, $"F8_E4M3 without its block scales '{name}{ScaleSuffix}'");
        return info;
    }

    public string FileOf(string name) => _inner.FileOf(name);

    public ReadOnlySpan<byte> RawBytes(string name, long offset, int length)
    {
        if (!_scaleOf.TryGetValue(name, out var scaleName))
        {
            // Info refuses block scales and unscaled fp8 with the reason.
            _ = Info(name);
            return _inner.RawBytes(name, offset, length);
        }
        var bytes = MemoryMarshal.AsBytes(Dequantized(name, scaleName).AsSpan());
        if (offset < 0 || length < 0 || offset > bytes.Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes [{offset}, {offset + length}) are outside the {bytes.Length} of '{name}'");
        return bytes.Slice((int)offset, length);
    }

    private bool IsScale(string name) => name.EndsWith(ScaleSuffix, StringComparison.Ordinal) && _scaleOf.ContainsKey(name[..^ScaleSuffix.Length]);

    private float[] Dequantized(string name, string scaleName)
    {
        lock (_lock)
        {
            if (_last is { } last && last.Name == name)
                return last.Values;
            var info = _inner.Info(name);
            int rows = checked((int)info.Shape[0]), cols = checked((int)info.Shape[1]);
            if (info.ByteLength > int.MaxValue || (long)rows * cols * sizeof(float) > Array.MaxLength)
                throw new SafetensorsFormatException(_inner.FileOf(name), name, $"{info.ShapeText} is too large to dequantize in one array");
            var values = GC.AllocateUninitializedArray<float>(rows * cols);
            BlockScaledFp8.Dequantize(_inner.RawBytes(name), rows, cols, _inner.ReadFloat32(scaleName), _blockRows, _blockCols, values);
            _last = (name, values);
            return values;
        }
    }

    public void Dispose() => _inner.Dispose();
}
