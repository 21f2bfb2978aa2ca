using Converter.Compute;
using Converter.Regularize.Hessian;

namespace Converter.Models.Tests.Models;

/// <summary>
/// <see cref="DriftCapture"/> on the host: each group's input from the original stream is paired with the quantized
/// stream's same rows, and a group with fewer outputs than inputs (down_proj) sums its cross term projected by its
/// weight, C·Wᵀ, while a group with more (gate and up) keeps the square C.
/// </summary>
public class DriftCaptureTests
{
    private const int Hidden = 24, Intermediate = 56, Tokens = 40;

    [Test]
    public void DownProjSumsItsCrossTermProjectedAndGateUpSquare()
    {
        var rng = new Random(3);
        float[] Random(int count) => Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        Linear Loaded(string name, int inFeatures, int outFeatures)
        {
            var linear = new Linear(name, inFeatures, outFeatures, hasBias: false);
            linear.SetParameters(new Matrix(outFeatures, inFeatures, Random(outFeatures * inFeatures)), null);
            return linear;
        }
        var down = new LinearGroup("model.layers.0", LinearSite.MlpOutput, [Loaded("model.layers.0.mlp.down_proj", Intermediate, Hidden)]);
        var gateUp = new LinearGroup("model.layers.0", LinearSite.MlpInput,
            [Loaded("model.layers.0.mlp.gate_proj", Hidden, Intermediate), Loaded("model.layers.0.mlp.up_proj", Hidden, Intermediate)]);

        using var hessians = new HessianCapture(CpuDenseAlgebra.Instance);
        using var capture = new DriftCapture(hessians, CpuDenseAlgebra.Instance);
        var inputs = new Dictionary<LinearGroup, (float[] Original, float[] Quantized)>();
        foreach (var group in new[] { gateUp, down })
        {
            var original = Random(Tokens * group.InFeatures);
            var quantized = original.Select(v => v + 0.1f * (float)(rng.NextDouble() - 0.5)).ToArray();
            inputs[group] = (original, quantized);
            capture.Original.OnLinearInput(group, new Matrix(Tokens, group.InFeatures, (float[])original.Clone()));
            capture.OnLinearInput(group, new Matrix(Tokens, group.InFeatures, (float[])quantized.Clone()));
        }

        Assert.That(capture.For(gateUp).Projection, Is.Null, "112 outputs of 24 inputs: square");
        Assert.That(capture.For(down).Projection, Is.Not.Null, "24 outputs of 56 inputs: projected");
        Assert.That(capture.For(down).Columns, Is.EqualTo(Hidden));

        // The projected mean is the square mean times Wᵀ: (C/N)·Wᵀ, summed independently here.
        var (o, q) = inputs[down];
        var square = new DriftAccumulator(Intermediate);
        square.Add(q, o, Tokens);
        var c = square.Mean();
        var w = down.Linears[0].Weight.Data;
        var projected = capture.For(down).Mean();
        double worst = 0, largest = 0;
        for (int i = 0; i < Intermediate; i++)
        {
            for (int j = 0; j < Hidden; j++)
            {
                double expected = 0;
                for (int m = 0; m < Intermediate; m++)
                    expected += c[i * Intermediate + m] * w[j * Intermediate + m];
                worst = Math.Max(worst, Math.Abs(projected[i * Hidden + j] - expected));
                largest = Math.Max(largest, Math.Abs(expected));
            }
        }
        Assert.That(worst, Is.LessThan(1e-5 * largest));
        Assert.That(capture.For(gateUp).Mean(), Has.Length.EqualTo(Hidden * Hidden));
    }
}
