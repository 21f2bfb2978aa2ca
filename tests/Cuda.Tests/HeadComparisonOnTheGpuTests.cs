using Converter.Compute;
using Converter.Conversion.Pipeline;
using Converter.Convert.Tests;
using Converter.Cuda.Blas;
using Converter.Cuda.Models;
using Converter.Eval.Metrics;
using Converter.Models.Forward;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// The head's comparison after quantizing on the GPU pass (<see cref="HeadComparison"/>): the device's per-token sums
/// (token_diff) against the host's, the logit scale and soft cap (scale_in_place, soft_cap) against the host pass, and
/// the whole comparison, with the states held on the device or uploaded from the host, against the logits worked out
/// by hand (<see cref="HeadComparisonCase"/>).
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class HeadComparisonOnTheGpuTests : GpuFixture
{
    private CudaDenseAlgebra _algebra = null!;
    private CudaForwardBackend _forward = null!;

    [OneTimeSetUp]
    public void Create()
    {
        _algebra = new CudaDenseAlgebra(Cuda);
        _forward = new CudaForwardBackend(_algebra);
    }

    [OneTimeTearDown]
    public void Destroy()
    {
        _forward?.Dispose();
        _algebra?.Dispose();
    }

    [TestCase(3, 1000)]
    [TestCase(37, 128256)]
    public void TheDevicesSumsAreTheHostsToDoubleRounding(int tokens, int width)
    {
        var rng = new Random(width);
        var test = new Matrix(tokens, width);
        var reference = new HiddenStates(1, tokens, width);
        for (int i = 0; i < test.Data.Length; i++)
        {
            reference.Row(0)[i] = (float)(rng.NextDouble() * 20 - 10);
            test.Data[i] = reference.Row(0)[i] + (float)(rng.NextDouble() - 0.5);
        }
        TokenDiff[] sums = [];
        _forward.Run(test, (pass, a) =>
        {
            sums = pass.Compare(a, pass.Load(reference, [0]));
            return pass.Zeros(1, 1);
        });
        var expected = TokenDiff.OfRows(test.Data, reference.Row(0).ToArray(), width);
        Assert.That(sums, Has.Length.EqualTo(tokens));
        for (int t = 0; t < tokens; t++)
        {
            Assert.That(sums[t].DiffSq, Is.EqualTo(expected[t].DiffSq).Within(1e-12 * expected[t].DiffSq));
            Assert.That(sums[t].RefSq, Is.EqualTo(expected[t].RefSq).Within(1e-12 * expected[t].RefSq));
            Assert.That(sums[t].TestSq, Is.EqualTo(expected[t].TestSq).Within(1e-12 * expected[t].TestSq));
            Assert.That(sums[t].Dot, Is.EqualTo(expected[t].Dot).Within(1e-12 * Math.Abs(expected[t].Dot)));
            Assert.That(sums[t].MaxDiff, Is.EqualTo(expected[t].MaxDiff), "the largest difference is exact in any order");
        }
    }

    [Test]
    public void ScaledAndCappedLogitsAreTheHostPasss()
    {
        var c = HeadComparisonCase.Create(seed: 3);
        var x = new Matrix(HeadComparisonCase.Tokens, HeadComparisonCase.Hidden, c.States.Row(0).ToArray());
        var host = HostForwardPass.Instance.Run(x, (pass, a) => c.Head.Logits(pass, a, c.Head.Projection));
        var device = _forward.Run(x, (pass, a) => c.Head.Logits(pass, a, c.Head.Projection));
        double worst = host.Data.Zip(device.Data, (h, d) => Math.Abs(h - d)).Max();
        Assert.That(worst, Is.LessThan(2e-5), "FP32 products and tanhf round differently, by a few ulps of the ±6 cap");
        Assert.That(device.Data.Max(), Is.LessThanOrEqualTo(HeadComparisonCase.SoftCap), "capped");
    }

    [Test]
    public void TheComparisonOnTheDeviceIsTheLogitsWorkedOutByHand()
    {
        var c = HeadComparisonCase.Create(seed: 4);
        int[] rows = [6, 2, 0, 5, 3];
        var rowsOfTokens = HeadComparisonCase.TokenRows;
        var uploaded = Compare(c, new CalibrationState(rowsOfTokens, c.States, [], _forward), new CalibrationState(rowsOfTokens, c.OriginalStates, [], _forward), rows);
        using var dir = new TempDirectory();
        new CalibrationState(rowsOfTokens, c.States, []).Save(dir.File("states"));
        new CalibrationState(rowsOfTokens, c.OriginalStates, []).Save(dir.File("original"));
        using var state = CalibrationState.Load(dir.File("states"), _forward);
        using var original = CalibrationState.Load(dir.File("original"), _forward);
        Assert.That(state.Resident, Is.InstanceOf<DeviceStates>());
        Assert.That(original.Resident, Is.InstanceOf<DeviceStates>());
        var resident = Compare(c, state, original, rows);
        var (expected, expectedAgainstOriginal) = c.Expected(rows);
        HeadComparisonCase.AssertClose(resident.Diff, expected);
        HeadComparisonCase.AssertClose(resident.AgainstOriginal, expectedAgainstOriginal);
        Assert.That((resident.Diff.RfnErr, resident.AgainstOriginal.RfnErr, resident.Diff.Sqnr),
            Is.EqualTo((uploaded.Diff.RfnErr, uploaded.AgainstOriginal.RfnErr, uploaded.Diff.Sqnr)), "the states' placement changes no bit");
    }

    private (ModuleDiff Diff, ModuleDiff AgainstOriginal) Compare(HeadComparisonCase c, CalibrationState state, CalibrationState original, int[] rows)
    {
        var (diff, againstOriginal) = (new ModuleDiff(), new ModuleDiff());
        HeadComparison.Add(_forward, c.Head, c.Original, state, original, rows, diff, againstOriginal);
        return (diff, againstOriginal);
    }
}
