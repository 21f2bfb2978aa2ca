using Converter.Compute;
using Converter.Regularize.Hessian;
using Converter.Regularize.Quantization;
using MathNet.Numerics.LinearAlgebra;
using NUnit.Framework;

namespace Converter.Regularize.Tests;

/// <summary>
/// The drift-aware target (<see cref="DriftCorrection"/>, <see cref="DriftAccumulator"/>) against its definition: the
/// minimizer of ‖X̃Tᵀ − XWᵀ‖² + λN‖T − W‖² (λ the damping LDLQ adds to H), solved independently by MathNet's QR of
/// the stacked system [X̃; √(λN)·I]·Tᵀ = [XWᵀ; √(λN)·Wᵀ], never through normal equations or our Cholesky.
/// </summary>
public sealed class DriftCorrectionTests
{
    private const int K = 40, Tokens = 300, Out = 24;

    private static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>X̃ with correlated channels and a few loud ones (as real activations), X = X̃ plus a drift of a tenth of its size.</summary>
    private static (float[] Quantized, float[] Original, float[] Weight) Streams(int seed)
    {
        var rng = new Random(seed);
        var quantized = new float[Tokens * K];
        var original = new float[Tokens * K];
        for (int t = 0; t < Tokens; t++)
        {
            double carry = 0;
            for (int i = 0; i < K; i++)
            {
                carry = 0.7 * carry + Normal(rng) * (i % 13 == 0 ? 4 : 1);
                quantized[t * K + i] = (float)carry;
                original[t * K + i] = (float)(carry + 0.1 * Normal(rng));
            }
        }
        var weight = Enumerable.Range(0, Out * K).Select(_ => (float)Normal(rng)).ToArray();
        return (quantized, original, weight);
    }

    private static GroupHessian Hessian(float[] quantized)
    {
        var accumulator = new HessianAccumulator(K);
        accumulator.Add(quantized, Tokens);
        return GroupHessian.Finalize(accumulator, LinearQuantizer.Pad(K), GroupHessian.DefaultSigma, new Random(1));
    }

    /// <summary>The cross sum, square or projected by <paramref name="projectedBy"/> (the group's weights, stacked in order).</summary>
    private static DriftAccumulator Cross(float[] quantized, float[] original, params float[][] projectedBy)
    {
        var cross = new DriftAccumulator(K, null, projectedBy.Length == 0 ? null : new CrossProjection(projectedBy, K));
        cross.Add(quantized, original, Tokens);
        return cross;
    }

    /// <summary>The sum in the form under test: <paramref name="projected"/> by the one weight, or square.</summary>
    private static DriftAccumulator Cross(float[] quantized, float[] original, float[] weight, bool projected) =>
        projected ? Cross(quantized, original, weight) : Cross(quantized, original);

    [Test]
    public void TheTargetIsTheDampedLeastSquaresFitOfTheOriginalOutputs([Values] bool projected)
    {
        var (quantized, original, weight) = Streams(3);
        var hessian = Hessian(quantized);
        var correction = DriftCorrection.For(hessian, Cross(quantized, original, weight, projected), 1.0, CpuDenseAlgebra.Instance)!;
        Assert.That(correction.Projected, Is.EqualTo(projected));
        var target = correction.Target(0, weight, Out, CpuDenseAlgebra.Instance);

        // λ as GroupHessian adds it: σ·mean(diag H) over the padded width; in sum form λ·N.
        double ridge = Math.Sqrt(GroupHessian.DefaultSigma * hessian.DiagMean * Tokens);
        var xq = Matrix<double>.Build.Dense(Tokens + K, K, (r, c) => r < Tokens ? quantized[r * K + c] : r - Tokens == c ? ridge : 0);
        var xo = Matrix<double>.Build.Dense(Tokens, K, (r, c) => original[r * K + c]);
        var w = Matrix<double>.Build.Dense(Out, K, (r, c) => weight[r * K + c]);
        var rhs = Matrix<double>.Build.Dense(Tokens + K, Out);
        rhs.SetSubMatrix(0, 0, xo * w.Transpose());
        rhs.SetSubMatrix(Tokens, 0, ridge * w.Transpose());
        var expected = xq.QR().Solve(rhs).Transpose();

        double worst = 0, shift = 0;
        for (int o = 0; o < Out; o++)
        {
            for (int i = 0; i < K; i++)
            {
                worst = Math.Max(worst, Math.Abs(target[o * K + i] - expected[o, i]));
                shift = Math.Max(shift, Math.Abs(expected[o, i] - weight[o * K + i]));
            }
        }
        TestContext.Out.WriteLine($"max |T − T_lstsq| {worst:E2}, max |T_lstsq − W| {shift:E2}");
        Assert.That(shift, Is.GreaterThan(0.05), "the case must move the target for the comparison to mean anything");
        Assert.That(worst, Is.LessThan(2e-4 * shift + 1e-5));
    }

    [Test]
    public void TheStrengthScalesTheStep([Values] bool projected)
    {
        var (quantized, original, weight) = Streams(5);
        var hessian = Hessian(quantized);
        var full = DriftCorrection.For(hessian, Cross(quantized, original, weight, projected), 1.0, CpuDenseAlgebra.Instance)!.Target(0, weight, Out, CpuDenseAlgebra.Instance);
        var half = DriftCorrection.For(hessian, Cross(quantized, original, weight, projected), 0.5, CpuDenseAlgebra.Instance)!.Target(0, weight, Out, CpuDenseAlgebra.Instance);
        for (int i = 0; i < weight.Length; i++)
            Assert.That(half[i] - weight[i], Is.EqualTo(0.5 * (full[i] - weight[i])).Within(1e-5), $"value {i}");
    }

    [Test]
    public void IdenticalStreamsOrNoStrengthLeaveTheWeight([Values] bool projected)
    {
        var (quantized, original, weight) = Streams(7);
        var hessian = Hessian(quantized);
        var same = Cross(quantized, quantized, weight, projected);
        Assert.That(same.AnyDrift, Is.False);
        Assert.That(same.Mean(), Has.Length.EqualTo(K * (projected ? Out : K)).And.All.EqualTo(0.0));
        Assert.That(DriftCorrection.For(hessian, same, 1.0, CpuDenseAlgebra.Instance), Is.Null);
        Assert.That(DriftCorrection.For(hessian, Cross(quantized, original, weight, projected), 0.0, CpuDenseAlgebra.Instance), Is.Null);
        Assert.That(DriftCorrection.For(hessian, new DriftAccumulator(K), 1.0, CpuDenseAlgebra.Instance), Is.Null, "no tokens");
    }

    [Test]
    public void TheCrossSumIsItsDefinitionAndSkipsNonFiniteTokens()
    {
        var (quantized, original, _) = Streams(9);
        // A bad token in each stream: both are skipped, as the Hessian sum skips bad rows.
        quantized[4 * K + 2] = float.NaN;
        original[17 * K + 5] = float.PositiveInfinity;
        var cross = Cross(quantized, original);
        Assert.That(cross.Count, Is.EqualTo(Tokens - 2));
        var mean = cross.Mean();
        double worst = 0;
        for (int i = 0; i < K; i++)
        {
            for (int j = 0; j < K; j++)
            {
                double sum = 0;
                for (int t = 0; t < Tokens; t++)
                {
                    if (t is 4 or 17)
                        continue;
                    sum += (double)quantized[t * K + i] * (original[t * K + j] - quantized[t * K + j]);
                }
                worst = Math.Max(worst, Math.Abs(mean[i * K + j] - sum / (Tokens - 2)));
            }
        }
        Assert.That(worst, Is.LessThan(1e-5));
    }

    [Test]
    public void StripedSubstitutionSolvesEveryColumnAsTheSingleSolve()
    {
        const int m = 70, columns = 130;
        var rng = new Random(11);
        var a = Matrix<double>.Build.Dense(m, m, (_, _) => Normal(rng));
        var spd = a * a.Transpose() + Matrix<double>.Build.DenseIdentity(m);
        var l = spd.Cholesky().Factor.ToRowMajorArray();
        var b = Enumerable.Range(0, m * columns).Select(_ => Normal(rng)).ToArray();
        var striped = (double[])b.Clone();
        CholeskySubstitution.SolveColumns(l, striped, m, columns);
        for (int c = 0; c < columns; c++)
        {
            var column = Enumerable.Range(0, m).Select(i => b[i * columns + c]).ToArray();
            CholeskySubstitution.Solve(l, column, m);
            for (int i = 0; i < m; i++)
                Assert.That(striped[i * columns + c], Is.EqualTo(column[i]).Within(1e-9), $"({i}, {c})");
        }
    }

    /// <summary>
    /// The logged shift ‖T − W‖/‖W‖ summed in parallel spans: the serial definition's value (to the bit below one span,
    /// to summation rounding across spans, the last one short), and the same on every run whatever the threads.
    /// </summary>
    [TestCase(1000)]
    [TestCase(3 * DriftCorrection.ShiftSpan + 12345)]
    public void TheShiftIsTheSerialSumsRatio(int length)
    {
        var rng = new Random(length);
        var weight = Enumerable.Range(0, length).Select(_ => (float)Normal(rng)).ToArray();
        var target = weight.Select(w => w + (float)(0.01 * Normal(rng))).ToArray();
        double difference = 0, norm = 0;
        for (int i = 0; i < length; i++)
        {
            double d = target[i] - weight[i];
            difference += d * d;
            norm += (double)weight[i] * weight[i];
        }
        double serial = Math.Sqrt(difference / norm);
        double shift = DriftCorrection.RelativeShift(weight, target);
        if (length < DriftCorrection.ShiftSpan)
            Assert.That(shift, Is.EqualTo(serial), "one span is the serial loop");
        else
            Assert.That(shift, Is.EqualTo(serial).Within(1e-10 * serial), "the serial loop rounds over millions of terms");
        Assert.That(Enumerable.Range(0, 3).Select(_ => DriftCorrection.RelativeShift(weight, target)), Is.All.EqualTo(shift));
        Assert.That(DriftCorrection.RelativeShift(weight, weight), Is.Zero);
    }

    /// <summary>
    /// On the host (an algebra that keeps G on the host makes no device target) the transposed target is T
    /// transposed and zero-padded, and its shift is <see cref="DriftCorrection.RelativeShift"/>'s, with or without
    /// <c>onDevice</c>.
    /// </summary>
    [Test]
    public void TheTransposedTargetOnTheHostIsTheTargetTransposedAndPadded([Values] bool projected)
    {
        var (quantized, original, weight) = Streams(4);
        var correction = DriftCorrection.For(Hessian(quantized), Cross(quantized, original, weight, projected), 1.0, CpuDenseAlgebra.Instance)!;
        var target = correction.Target(0, weight, Out, CpuDenseAlgebra.Instance);
        int paddedK = LinearQuantizer.Pad(K), paddedN = LinearQuantizer.Pad(Out);
        foreach (bool onDevice in new[] { true, false })
        {
            var (transposed, shift) = correction.TransposedTarget(0, weight, Out, paddedK, paddedN, CpuDenseAlgebra.Instance, onDevice);
            Assert.That(transposed, Is.EqualTo(LinearQuantizer.TransposePadded(target, Out, K, paddedK, paddedN)));
            Assert.That(transposed[(paddedK - 1) * paddedN + paddedN - 1], Is.Zero, "padding");
            // The projected form sums (T − W)² in double from the transposed layout, RelativeShift the float difference in HF order.
            Assert.That(shift, Is.EqualTo(DriftCorrection.RelativeShift(weight, target)).Within(projected ? 1e-6 * shift : 0).And.GreaterThan(0));
        }
    }

    /// <summary>
    /// The projected sum C·Wᵀ solves to the steps the square sum's G gives (W·Gᵀ): the same target to float rounding,
    /// for a group of two members of uneven heights, each member's block found by its position.
    /// </summary>
    [Test]
    public void TheProjectedSumGivesTheSquareSumsTargetForEveryMember()
    {
        var (quantized, original, weight) = Streams(12);
        var rng = new Random(99);
        const int second = 9;
        var other = Enumerable.Range(0, second * K).Select(_ => (float)Normal(rng)).ToArray();
        var hessian = Hessian(quantized);
        using var square = DriftCorrection.For(hessian, Cross(quantized, original), 1.0, CpuDenseAlgebra.Instance)!;
        using var projected = DriftCorrection.For(hessian, Cross(quantized, original, weight, other), 1.0, CpuDenseAlgebra.Instance)!;
        Assert.That(projected.Projected, Is.True);
        foreach (var (member, w, rows) in new[] { (0, weight, Out), (1, other, second) })
        {
            var expected = square.Target(0, w, rows, CpuDenseAlgebra.Instance);
            var actual = projected.Target(member, w, rows, CpuDenseAlgebra.Instance);
            double worst = 0, step = 0;
            for (int i = 0; i < w.Length; i++)
            {
                worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]));
                step = Math.Max(step, Math.Abs(expected[i] - w[i]));
            }
            TestContext.Out.WriteLine($"member {member}: max |T_projected − T_square| {worst:E2}, max step {step:E2}");
            Assert.That(step, Is.GreaterThan(0.05));
            Assert.That(worst, Is.LessThan(1e-4 * step));
        }
        Assert.Throws<ArgumentException>(() => projected.Target(1, weight, Out, CpuDenseAlgebra.Instance), "member 1 has 9 rows");
        Assert.Throws<ArgumentException>(() => projected.Target(2, other, second, CpuDenseAlgebra.Instance));
    }

    /// <summary>The projected mean is its definition, mean of x̃_i·((x − x̃)·Wᵀ)_j over the kept tokens, for two members stacked.</summary>
    [Test]
    public void TheProjectedSumIsItsDefinition()
    {
        var (quantized, original, weight) = Streams(14);
        var rng = new Random(5);
        var other = Enumerable.Range(0, 3 * K).Select(_ => (float)Normal(rng)).ToArray();
        quantized[6 * K + 1] = float.NaN;
        var cross = Cross(quantized, original, weight, other);
        Assert.That(cross.Columns, Is.EqualTo(Out + 3));
        var mean = cross.Mean();
        double worst = 0, largest = 0;
        for (int i = 0; i < K; i++)
        {
            for (int j = 0; j < Out + 3; j++)
            {
                var row = j < Out ? weight.AsSpan(j * K, K) : other.AsSpan((j - Out) * K, K);
                double sum = 0;
                for (int t = 0; t < Tokens; t++)
                {
                    if (t == 6)
                        continue;
                    double projectedDifference = 0;
                    for (int c = 0; c < K; c++)
                        projectedDifference += (original[t * K + c] - quantized[t * K + c]) * (double)row[c];
                    sum += quantized[t * K + i] * projectedDifference;
                }
                worst = Math.Max(worst, Math.Abs(mean[i * (Out + 3) + j] - sum / (Tokens - 1)));
                largest = Math.Max(largest, Math.Abs(sum / (Tokens - 1)));
            }
        }
        Assert.That(worst, Is.LessThan(1e-5 * largest));
    }

    [TestCase(28672, 8192, true, TestName = "A 70B down_proj is projected")]
    [TestCase(8192, 8192 + 2 * 1024, false, TestName = "q, k and v are not")]
    [TestCase(4096, 4096, false, TestName = "o_proj as wide as its input is not")]
    [TestCase(4096, 2 * 14336, false, TestName = "gate and up are not")]
    public void GroupsWithFewerOutputsThanInputsAreProjected(int features, long outputs, bool projects) =>
        Assert.That(DriftAccumulator.Projects(features, outputs), Is.EqualTo(projects));
}
