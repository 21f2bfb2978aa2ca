using Converter.Conversion.Pipeline;
using Converter.Cuda.Blas;
using Converter.Cuda.Models;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>
/// Calibration states held on the GPU (<see cref="DeviceStates"/>) against the same states on the host, both run by
/// the GPU forward on the random two-layer llama: a resident run gathers the rows on the device instead of uploading
/// a host gather, so every output, kept row, Hessian sum (the head's too) and dropped row must be the same to the bit;
/// and a checkpoint written from the device reads back onto the device or the host unchanged.
/// </summary>
[TestFixture, Category("Gpu")]
public sealed class ResidentStatesTests : GpuFixture
{
    private const int RowCount = 20, Tokens = 512;

    private CudaDenseAlgebra _algebra = null!;
    private CudaForwardBackend _forward = null!;
    private CheckpointReader _checkpoint = null!;
    private TransformerModel _model = null!;
    private List<int[]> _rows = null!;

    [OneTimeSetUp]
    public void Create()
    {
        _algebra = new CudaDenseAlgebra(Cuda);
        _forward = new CudaForwardBackend(_algebra);
        _checkpoint = CheckpointReader.Open(RepoPaths.TestModel("rand-llama31"));
        _model = TransformerModel.FromConfig(ModelConfig.Load(RepoPaths.TestModel("rand-llama31")), _algebra, _forward);
        var rng = new Random(4);
        _rows = Enumerable.Range(0, RowCount).Select(_ => Enumerable.Range(0, Tokens).Select(_ => rng.Next(_model.Spec.VocabSize)).ToArray()).ToList();
    }

    [OneTimeTearDown]
    public void Destroy()
    {
        _checkpoint?.Dispose();
        _forward?.Dispose();
        _algebra?.Dispose();
    }

    /// <summary>Both placements after the embedding (which runs on the host and writes its rows into either).</summary>
    private (CalibrationState Host, CalibrationState Device) Embedded()
    {
        var host = new CalibrationState(_rows, null, []);
        var device = new CalibrationState(_rows, null, [], _forward);
        _model.Embedding.Load(_checkpoint);
        Assert.That(host.Advance(_model.Embedding), Is.Empty);
        Assert.That(device.Advance(_model.Embedding), Is.Empty);
        _model.Embedding.Release();
        Assert.That(device.Hidden, Is.Null, "the states are not on the host");
        Assert.That(device.Resident, Is.InstanceOf<DeviceStates>());
        Assert.That(device.Placement, Is.EqualTo("cuda:0"));
        return (host, device);
    }

    [Test]
    public void DeviceStatesComputeWhatHostStatesDoToTheBit()
    {
        var (host, device) = Embedded();
        using var _ = device;
        var all = host.GoodRows.ToList();
        foreach (var layer in _model.Layers)
        {
            layer.Load(_checkpoint);
            using var hostCapture = new HessianCapture(_algebra);
            using var deviceCapture = new HessianCapture(_algebra);
            var hostKept = host.Forward(layer, all, hostCapture, keepRows: 3);
            var deviceKept = device.Forward(layer, all, deviceCapture, keepRows: 3);
            Assert.That(deviceKept.ShapeText, Is.EqualTo(hostKept.ShapeText));
            Assert.That(deviceKept.Data, Is.EqualTo(hostKept.Data), $"{layer.Name}: the kept rows");
            foreach (var group in layer.LinearGroups)
                Assert.That(deviceCapture.For(group).Sum.ToArray(), Is.EqualTo(hostCapture.For(group).Sum.ToArray()), $"{group}: the Hessian sums");

            Assert.That(device.Advance(layer), Is.Empty);
            Assert.That(host.Advance(layer), Is.Empty);
            var row = new float[Tokens * _model.Spec.HiddenSize];
            for (int r = 0; r < RowCount; r++)
            {
                device.ReadRow(r, row);
                Assert.That(row, Is.EqualTo(host.Hidden!.Row(r).ToArray()), $"{layer.Name}, row {r}");
            }
            layer.Release();
        }

        // The final norm runs on the device states in place, and the head's Hessian is their own Gram sum there.
        _model.FinalNorm.Load(_checkpoint);
        Assert.That(device.Advance(_model.FinalNorm), Is.Empty);
        Assert.That(host.Advance(_model.FinalNorm), Is.Empty);
        _model.FinalNorm.Release();
        var final = new float[Tokens * _model.Spec.HiddenSize];
        for (int r = 0; r < RowCount; r++)
        {
            device.ReadRow(r, final);
            Assert.That(final, Is.EqualTo(host.Hidden!.Row(r).ToArray()), $"{_model.FinalNorm.Name}, row {r}");
        }
        var head = _model.Head.LinearGroups[0];
        using var hostHead = new HessianCapture(_algebra);
        using var deviceHead = new HessianCapture(_algebra);
        foreach (var chunk in all.Chunk(8))
        {
            host.Observe(head, hostHead, chunk);
            device.Observe(head, deviceHead, chunk);
        }
        Assert.That(deviceHead.For(head).Count, Is.EqualTo(RowCount * Tokens));
        Assert.That(deviceHead.For(head).Sum.ToArray(), Is.EqualTo(hostHead.For(head).Sum.ToArray()), "the head's Hessian sums");
    }

    /// <summary>
    /// The embedding writes the device's rows as the host's (CalibrationState.Embed uploads each from a worker's
    /// buffer), and ForwardChunks hands the device's outputs through one host matrix per chunk size, reused from call
    /// to call, holding what Forward returns.
    /// </summary>
    [Test]
    public void ChunksFromTheDeviceComeThroughOneReusedMatrixWithForwardsValues()
    {
        var (host, device) = Embedded();
        using var _ = device;
        var row = new float[Tokens * _model.Spec.HiddenSize];
        for (int r = 0; r < RowCount; r++)
        {
            device.ReadRow(r, row);
            Assert.That(row, Is.EqualTo(host.Hidden!.Row(r).ToArray()), $"embedding, row {r}");
        }
        var layer = _model.Layers[0];
        layer.Load(_checkpoint);
        var all = device.GoodRows.ToList();
        var expected = device.Forward(layer, all, null);
        var matrices = new List<Compute.Matrix>();
        for (int call = 0; call < 2; call++)
        {
            var streamed = new List<float>();
            device.ForwardChunks(layer, all, (_, outputs) =>
            {
                matrices.Add(outputs);
                streamed.AddRange(outputs.Data);
            });
            Assert.That(streamed, Is.EqualTo(expected.Data), $"call {call}: the chunks together are Forward's outputs");
        }
        layer.Release();
        // 20 rows in chunks of 8: two of 8 rows and one of 4 per call, six in all, through two matrices.
        Assert.That(matrices, Has.Count.EqualTo(6));
        Assert.That(matrices.Distinct().Count(), Is.EqualTo(2), "one matrix per chunk size, kept from call to call");
    }

    [Test]
    public void NonFiniteRowsAreDroppedOnTheDeviceAsOnTheHost()
    {
        var (host, device) = Embedded();
        using var _ = device;
        // Row 11 (the second chunk) gets a NaN in its first token, row 3 an infinity in its last.
        foreach (var state in new[] { host, device })
        {
            var row = new float[Tokens * _model.Spec.HiddenSize];
            state.ReadRow(11, row);
            row[0] = float.NaN;
            WriteRow(state, 11, row);
            state.ReadRow(3, row);
            row[^1] = float.PositiveInfinity;
            WriteRow(state, 3, row);
        }
        _model.Layers[0].Load(_checkpoint);
        Assert.That(host.Advance(_model.Layers[0]), Is.EqualTo(new[] { 3, 11 }));
        Assert.That(device.Advance(_model.Layers[0]), Is.EqualTo(new[] { 3, 11 }));
        Assert.That(device.GoodRows, Is.EqualTo(host.GoodRows));
        _model.Layers[0].Release();
    }

    [Test]
    public void ACheckpointOfDeviceStatesReadsBackOntoEitherPlace()
    {
        var (host, device) = Embedded();
        using var _ = device;
        device.BadRows.Add(7);
        var dir = Directory.CreateTempSubdirectory("trellis-resident-states");
        try
        {
            string path = Path.Combine(dir.FullName, "state.safetensors");
            device.Save(path);
            using var onDevice = CalibrationState.Load(path, _forward);
            var onHost = CalibrationState.Load(path);
            Assert.That(onDevice.Resident, Is.Not.Null);
            Assert.That(onHost.Hidden, Is.Not.Null);
            Assert.That(onDevice.BadRows, Is.EqualTo(new[] { 7 }));
            Assert.That(onHost.Rows.Select(r => r.ToArray()), Is.EqualTo(_rows));
            var row = new float[Tokens * _model.Spec.HiddenSize];
            for (int r = 0; r < RowCount; r++)
            {
                onDevice.ReadRow(r, row);
                Assert.That(row, Is.EqualTo(host.Hidden!.Row(r).ToArray()), $"row {r} back on the device");
                Assert.That(onHost.Hidden!.Row(r).ToArray(), Is.EqualTo(host.Hidden!.Row(r).ToArray()), $"row {r} on the host");
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static void WriteRow(CalibrationState state, int row, float[] values)
    {
        if (state.Resident is { } resident)
            resident.WriteRow(row, values);
        else
            values.CopyTo(state.Hidden!.Row(row));
    }
}
