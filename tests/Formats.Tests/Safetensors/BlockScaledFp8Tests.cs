using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Formats.Tests.Safetensors;

/// <summary>
/// Block-scaled FP8 dequantization on a 3×5 matrix in 2×2 blocks, so the last block row and column are partial
/// (scale grid 2×3), with subnormals, ±448, −0 and NaN among the codes; expected values worked out by hand.
/// </summary>
public class BlockScaledFp8Tests
{
    private static readonly byte[] Codes =
    [
        0x38, 0x40, 0x3C, 0xC0, 0x01,
        0x08, 0x7E, 0xB8, 0x00, 0x7F,
        0x30, 0x44, 0x07, 0xFE, 0x80,
    ];

    private static readonly float[] ScaleInv = [0.5f, 2f, 4f, 8f, 0.25f, 16f];

    private static readonly float[] Expected =
    [
        0.5f, 1f, 3f, -4f, 0.0078125f,                  // blocks (0,0) ×0.5, (0,1) ×2, partial (0,2) ×4: 2^−9·4
        0.0078125f, 224f, -2f, 0f, float.NaN,           // 2^−6·0.5, 448·0.5, −1·2, 0, NaN stays NaN
        4f, 24f, 0.00341796875f, -112f, -0f,            // partial block row: ×8, ×0.25 (7/8·2^−6·¼), ×16 (−0)
    ];

    [Test]
    public void DequantizesWithPartialEdgeBlocks()
    {
        var values = new float[15];
        BlockScaledFp8.Dequantize(Codes, 3, 5, ScaleInv, 2, 2, values);
        Assert.That(values, Is.EqualTo(Expected));
        Assert.That(float.IsNegative(values[14]), Is.True, "−0 · 16 is −0");
    }

    [Test]
    public void RefusesAScaleGridOfTheWrongSize() =>
        Assert.Throws<ArgumentException>(() => BlockScaledFp8.Dequantize(Codes, 3, 5, ScaleInv.AsSpan(0, 4), 2, 2, new float[15]));

    /// <summary>A checkpoint with the FP8 weight, its scales and a bf16 norm, with quantization_config fp8 [2, 2].</summary>
    private static string WriteCheckpoint(TempDirectory dir, long[]? scaleShape = null, bool unscaledExtra = false)
    {
        var writer = new SafetensorsWriter();
        writer.AddBytes("layer.weight", DType.F8_E4M3, [3, 5], Codes);
        if (unscaledExtra)
            writer.AddBytes("other.weight", DType.F8_E4M3, [3, 5], Codes);
        writer.AddFloat32("layer.weight_scale_inv", scaleShape ?? [2, 3], ScaleInv);
        writer.AddFloat32("layer.norm.weight", [5], [1f, 2f, 3f, 4f, 5f], DType.BF16);
        writer.Write(dir.File("model.safetensors"));
        File.WriteAllText(dir.File("config.json"), """{"quantization_config": {"quant_method": "fp8", "weight_block_size": [2, 2]}}""");
        return dir.Path;
    }

    private static System.Text.Json.Nodes.JsonObject Config(TempDirectory dir) =>
        System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!.AsObject();

    [Test]
    public void AnFp8CheckpointReadsDequantizedAndHidesItsScales()
    {
        using var dir = new TempDirectory();
        using var reader = SourceCheckpoint.Open(WriteCheckpoint(dir), Config(dir));
        Assert.That(reader.TensorNames, Is.EqualTo(new[] { "layer.weight", "layer.norm.weight" }), "the block scales are consumed");
        Assert.That(reader.Contains("layer.weight_scale_inv"), Is.False);
        var info = reader.Info("layer.weight");
        Assert.That((info.DType, info.ShapeText), Is.EqualTo((DType.F32, "(3, 5)")));
        Assert.That(reader.ReadFloat32("layer.weight"), Is.EqualTo(Expected));
        // A window of the dequantized tensor, as large tensors are read.
        var window = new float[4];
        reader.ReadFloat32("layer.weight", 6, window);
        Assert.That(window, Is.EqualTo(Expected.AsSpan(6, 4).ToArray()));
        Assert.That(reader.ReadFloat32("layer.norm.weight"), Is.EqualTo(new[] { 1f, 2f, 3f, 4f, 5f }));
        Assert.That(reader.Info("layer.norm.weight").DType, Is.EqualTo(DType.BF16), "other tensors pass through");
    }

    [Test]
    public void WithoutFp8ConfigTheCheckpointReadsAsStored()
    {
        using var dir = new TempDirectory();
        using var reader = SourceCheckpoint.Open(WriteCheckpoint(dir), null);
        Assert.That(reader.TensorNames, Does.Contain("layer.weight_scale_inv"));
        Assert.That(reader.Info("layer.weight").DType, Is.EqualTo(DType.F8_E4M3));
        // Raw fp8 decodes without its scales.
        Assert.That(reader.ReadFloat32("layer.weight")[1], Is.EqualTo(2f));
    }

    [Test]
    public void AScaleGridThatDoesNotMatchTheBlocksNamesTheTensor()
    {
        using var dir = new TempDirectory();
        var path = WriteCheckpoint(dir, scaleShape: [3, 2]);
        var e = Assert.Throws<SafetensorsFormatException>(() => SourceCheckpoint.Open(path, Config(dir)).Dispose())!;
        Assert.That(e.Message, Does.Contain("layer.weight_scale_inv").And.Contain("(2, 3)"));
    }

    [Test]
    public void AnFp8WeightWithoutScalesIsRefusedNotReadRaw()
    {
        using var dir = new TempDirectory();
        using var reader = SourceCheckpoint.Open(WriteCheckpoint(dir, unscaledExtra: true), Config(dir));
        var e = Assert.Throws<SafetensorsFormatException>(() => reader.ReadFloat32("other.weight"))!;
        Assert.That(e.Message, Does.Contain("other.weight").And.Contain("other.weight_scale_inv"));
        Assert.That(reader.ReadFloat32("layer.weight"), Is.EqualTo(Expected), "the scaled weight still reads");
    }
}
