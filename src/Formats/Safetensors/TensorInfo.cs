namespace Converter.Formats.Safetensors;

/// <summary>
/// One tensor's header entry. <see cref="DataOffset"/> is absolute within its file (header included), so a
/// reader can address the bytes directly. <see cref="Shape"/> must not be modified.
/// </summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long DataOffset, long ByteLength)
{
    /// <summary>Product of the shape (1 for a scalar of shape []).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Shape)
                n *= d;
            return n;
        }
    }

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Length;

    /// <summary>Shape as "(4096, 256)" for messages.</summary>
    public string ShapeText => "(" + string.Join(", ", Shape) + ")";

    /// <summary>Value equality including the shape's elements (a record would compare the array by reference).</summary>
    public bool Equals(TensorInfo? other) =>
        other is not null && Name == other.Name && DType == other.DType && Shape.AsSpan().SequenceEqual(other.Shape) &&
        DataOffset == other.DataOffset && ByteLength == other.ByteLength;

    public override int GetHashCode() => HashCode.Combine(Name, DType, DataOffset, ByteLength);

    public override string ToString() => $"{Name} {DType.SafetensorsName()} {ShapeText}";
}
