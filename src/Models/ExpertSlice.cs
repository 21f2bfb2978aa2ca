using Converter.Formats.Numerics;
using Converter.Formats.Safetensors;

namespace Converter.Models;

/// <summary>
/// Where one expert's linear sits inside a checkpoint's 3-D expert tensor (gpt-oss's <c>mlp.experts.gate_up_proj</c>
/// and <c>down_proj</c>): the tensor is input-major, [experts, in, columns], and the linear's output features are
/// columns <see cref="Offset"/>, Offset + <see cref="Stride"/>, … of expert <see cref="Expert"/>'s slab (gate and up
/// interleave along the columns: gate_up[..., ::2] and gate_up[..., 1::2] in transformers' GptOssExperts). Its bias
/// is the same entries of the [experts, columns] <see cref="BiasTensor"/>. A published gpt-oss checkpoint stores the
/// weight as MXFP4 instead, output-major: <c>{tensor}_blocks</c> [experts, columns, in/32, 16] and
/// <c>{tensor}_scales</c> [experts, columns, in/32] (<see cref="Mxfp4"/>), read here to the same values.
/// </summary>
public sealed record ExpertSlice(int Experts, int Expert, int Columns, int Offset, int Stride, string? BiasTensor)
{
    public const string BlocksSuffix = "_blocks";

    public const string ScalesSuffix = "_scales";

    /// <summary>The names a weight tensor may be stored under: itself, or its MXFP4 blocks and scales.</summary>
    public static IEnumerable<string> StoredNames(string tensor) => [tensor, tensor + BlocksSuffix, tensor + ScalesSuffix];

    /// <summary>The linear's weight (out, in) as float32, from the plain or the MXFP4 tensor, checked for shape and finiteness.</summary>
    public float[] ReadWeight(ITensorReader reader, string tensor, int inFeatures, int outFeatures)
    {
        Validate(inFeatures, outFeatures);
        var weight = new float[checked(outFeatures * inFeatures)];
        string checkedName;
        if (reader.Contains(tensor) || !reader.Contains(tensor + BlocksSuffix))
        {
            CheckShape(reader, tensor, [Experts, inFeatures, Columns]);
            var slab = new float[checked(inFeatures * Columns)];
            reader.ReadFloat32(tensor, (long)Expert * slab.Length, slab);
            for (int i = 0; i < inFeatures; i++)
            {
                for (int o = 0; o < outFeatures; o++)
                    weight[o * inFeatures + i] = slab[i * Columns + Offset + o * Stride];
            }
            checkedName = tensor;
        }
        else
        {
            string blocks = tensor + BlocksSuffix, scales = tensor + ScalesSuffix;
            if (inFeatures % Mxfp4.BlockValues != 0)
                throw new SafetensorsFormatException(reader.FileOf(blocks), blocks, $"{inFeatures} input features are not whole MXFP4 blocks of {Mxfp4.BlockValues}");
            int groups = inFeatures / Mxfp4.BlockValues;
            CheckShape(reader, blocks, [Experts, Columns, groups, Mxfp4.BlockBytes]);
            CheckShape(reader, scales, [Experts, Columns, groups]);
            CheckByteType(reader, blocks);
            CheckByteType(reader, scales);
            long rowBytes = (long)groups * Mxfp4.BlockBytes;
            for (int o = 0; o < outFeatures; o++)
            {
                long row = (long)Expert * Columns + Offset + (long)o * Stride;
                Mxfp4.Decode(reader.RawBytes(blocks, row * rowBytes, (int)rowBytes), reader.RawBytes(scales, row * groups, groups),
                    weight.AsSpan(o * inFeatures, inFeatures));
            }
            checkedName = blocks;
        }
        int bad = FiniteCheck.IndexOfNonFinite(weight);
        if (bad >= 0)
            throw new SafetensorsFormatException(reader.FileOf(checkedName), checkedName, $"non-finite value {weight[bad]} in expert {Expert} at ({bad / inFeatures}, {bad % inFeatures})");
        return weight;
    }

    /// <summary>The linear's bias (out values) from <see cref="BiasTensor"/>, checked for shape and finiteness.</summary>
    public float[] ReadBias(ITensorReader reader, int outFeatures)
    {
        var name = BiasTensor ?? throw new InvalidOperationException("the expert slice has no bias tensor");
        CheckShape(reader, name, [Experts, Columns]);
        var row = new float[Columns];
        reader.ReadFloat32(name, (long)Expert * Columns, row);
        var bias = new float[outFeatures];
        for (int o = 0; o < outFeatures; o++)
            bias[o] = row[Offset + o * Stride];
        int bad = FiniteCheck.IndexOfNonFinite(bias);
        if (bad >= 0)
            throw new SafetensorsFormatException(reader.FileOf(name), name, $"non-finite value {bias[bad]} in expert {Expert} at {bad}");
        return bias;
    }

    private void Validate(int inFeatures, int outFeatures)
    {
        if (Expert < 0 || Expert >= Experts || inFeatures <= 0 || outFeatures <= 0 || Stride <= 0 || Offset < 0 || Offset + (long)(outFeatures - 1) * Stride >= Columns)
            throw new ArgumentException($"expert {Expert} of {Experts}: {outFeatures} outputs at {Offset} step {Stride} do not fit {Columns} columns");
    }

    private static void CheckShape(ITensorReader reader, string name, long[] shape)
    {
        var info = reader.Info(name);
        if (!info.Shape.AsSpan().SequenceEqual(shape))
            throw new SafetensorsFormatException(reader.FileOf(name), name, $"shape {info.ShapeText}, but config.json implies ({string.Join(", ", shape)})");
    }

    private static void CheckByteType(ITensorReader reader, string name)
    {
        var info = reader.Info(name);
        if (info.DType != DType.U8)
            throw new SafetensorsFormatException(reader.FileOf(name), name, $"dtype {info.DType.SafetensorsName()}, MXFP4 blocks and scales are U8");
    }
}
