using Converter.Formats.Numerics;
using Converter.Formats.Safetensors;

namespace Converter.Models;

/// <summary>Reads a parameter as float32 (bf16 and fp16 convert exactly), checking its shape against the config and its values for NaN/Inf.</summary>
public static class WeightLoader
{
    public static float[] Read(ITensorReader reader, string name, params int[] shape)
    {
        var info = reader.Info(name);
        if (!info.Shape.SequenceEqual(shape.Select(d => (long)d)))
            throw new SafetensorsFormatException(reader.FileOf(name), name,
                $"shape {info.ShapeText}, but config.json implies ({string.Join(", ", shape)})");
        var values = reader.ReadFloat32(name);
        int bad = FiniteCheck.IndexOfNonFinite(values);
        if (bad >= 0)
            throw new SafetensorsFormatException(reader.FileOf(name), name, $"non-finite value {values[bad]} at element {bad}");
        return values;
    }

    /// <summary>Rows [offset, offset + count) of a (rows, cols) tensor, checked as <see cref="Read"/> checks the whole.</summary>
    public static float[] ReadRows(ITensorReader reader, string name, int rows, int cols, int offset, int count)
    {
        var all = Read(reader, name, rows, cols);
        return all.AsSpan(checked(offset * cols), checked(count * cols)).ToArray();
    }
}
