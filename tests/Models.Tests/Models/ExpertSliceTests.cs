using Converter.Formats.Safetensors;
using Converter.TestSupport;

namespace Converter.Models.Tests.Models;

/// <summary>
/// One expert's linear read out of a 3-D expert tensor (gpt-oss): the interleaved gate/up columns, transposed to
/// (out, in), from bf16 and from MXFP4 alike; bad shapes and dtypes are refused naming the tensor.
/// </summary>
public class ExpertSliceTests
{
    private const int Experts = 2, In = 64, Intermediate = 3;

    /// <summary>Value of gate_up[e, i, c]: distinct and exact in bf16 and in MXFP4 with scale 1 (E2M1 values).</summary>
    private static float Value(int e, int i, int c) => new[] { 0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f }[(e * 5 + i * 3 + c) % 8] * ((i + c) % 3 == 0 ? -1 : 1);

    [Test]
    public void GateAndUpAreTheEvenAndOddColumnsOfTheExpertsSlabTransposed([Values] bool mxfp4)
    {
        using var dir = new TempDirectory();
        using var reader = Write(dir, mxfp4, biasShape: [Experts, 2 * Intermediate]);
        for (int e = 0; e < Experts; e++)
        {
            for (int offset = 0; offset < 2; offset++)
            {
                var linear = new Linear($"experts.{e}.{(offset == 0 ? "gate" : "up")}_proj", In, Intermediate, true, "experts.gate_up_proj",
                    expert: new ExpertSlice(Experts, e, 2 * Intermediate, offset, 2, "experts.gate_up_proj_bias"));
                linear.Load(reader);
                for (int o = 0; o < Intermediate; o++)
                {
                    for (int i = 0; i < In; i++)
                        Assert.That(linear.Weight.Data[o * In + i], Is.EqualTo(Value(e, i, 2 * o + offset)), $"expert {e} offset {offset} ({o}, {i})");
                    Assert.That(linear.Bias![o], Is.EqualTo(100 * e + 2 * o + offset));
                }
                Assert.That(linear.SourceTensors, Is.EquivalentTo(new[] { "experts.gate_up_proj", "experts.gate_up_proj_blocks", "experts.gate_up_proj_scales", "experts.gate_up_proj_bias" }));
            }
        }
    }

    [Test]
    public void AWrongShapeIsRefusedNamingTheTensor([Values] bool mxfp4)
    {
        using var dir = new TempDirectory();
        using var reader = Write(dir, mxfp4, biasShape: [Experts, 2 * Intermediate]);
        // Three experts declared, two stored.
        var linear = new Linear("experts.0.gate_proj", In, Intermediate, true, "experts.gate_up_proj",
            expert: new ExpertSlice(3, 0, 2 * Intermediate, 0, 2, "experts.gate_up_proj_bias"));
        var e = Assert.Throws<SafetensorsFormatException>(() => linear.Load(reader));
        Assert.That(e!.Message, Does.Contain(mxfp4 ? "experts.gate_up_proj_blocks" : "experts.gate_up_proj").And.Contain("shape"));
    }

    [Test]
    public void Mxfp4BlocksOfAnotherDtypeAreRefused()
    {
        using var dir = new TempDirectory();
        var writer = new SafetensorsWriter();
        writer.AddFloat32("experts.gate_up_proj_blocks", [Experts, 2 * Intermediate, In / 32, 16], new float[Experts * 2 * Intermediate * In / 2], DType.F16);
        writer.AddBytes("experts.gate_up_proj_scales", DType.U8, [Experts, 2 * Intermediate, In / 32], new byte[Experts * 2 * Intermediate * In / 32]);
        writer.Write(dir.File("m.safetensors"));
        using var reader = SafetensorsFile.Open(dir.File("m.safetensors"));
        var linear = new Linear("experts.0.gate_proj", In, Intermediate, false, "experts.gate_up_proj", expert: new ExpertSlice(Experts, 0, 2 * Intermediate, 0, 2, null));
        var e = Assert.Throws<SafetensorsFormatException>(() => linear.Load(reader));
        Assert.That(e!.Message, Does.Contain("experts.gate_up_proj_blocks").And.Contain("U8"));
    }

    /// <summary>gate_up_proj [E, In, 2·I] as bf16, or as MXFP4 blocks [E, 2·I, In/32, 16] with every scale 2⁰; its bias [E, 2·I] = 100e + c.</summary>
    private static SafetensorsFile Write(TempDirectory dir, bool mxfp4, long[] biasShape)
    {
        var writer = new SafetensorsWriter();
        int columns = 2 * Intermediate;
        if (mxfp4)
        {
            var blocks = new byte[Experts * columns * In / 2];
            for (int e = 0; e < Experts; e++)
            {
                for (int c = 0; c < columns; c++)
                {
                    for (int i = 0; i < In; i++)
                    {
                        float v = Value(e, i, c);
                        int code = Array.IndexOf(new[] { 0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f }, MathF.Abs(v)) | (v < 0 ? 8 : 0);
                        // Row (e, c) holds In values, two per byte, the even one in the low nibble.
                        blocks[((e * columns + c) * In + i) / 2] |= (byte)(i % 2 == 0 ? code : code << 4);
                    }
                }
            }
            writer.AddBytes("experts.gate_up_proj_blocks", DType.U8, [Experts, columns, In / 32, 16], blocks);
            writer.AddBytes("experts.gate_up_proj_scales", DType.U8, [Experts, columns, In / 32], Enumerable.Repeat((byte)127, Experts * columns * In / 32).ToArray());
        }
        else
        {
            var values = new float[Experts * In * columns];
            for (int e = 0; e < Experts; e++)
            {
                for (int i = 0; i < In; i++)
                {
                    for (int c = 0; c < columns; c++)
                        values[(e * In + i) * columns + c] = Value(e, i, c);
                }
            }
            writer.AddFloat32("experts.gate_up_proj", [Experts, In, columns], values, DType.BF16);
        }
        writer.AddFloat32("experts.gate_up_proj_bias", biasShape, Enumerable.Range(0, Experts * columns).Select(x => (float)(100 * (x / columns) + x % columns)).ToArray(), DType.BF16);
        writer.Write(dir.File("m.safetensors"));
        return SafetensorsFile.Open(dir.File("m.safetensors"));
    }
}
