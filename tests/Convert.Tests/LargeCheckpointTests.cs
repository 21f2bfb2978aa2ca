using System.Diagnostics;
using Converter.Conversion.Pipeline;
using Converter.Models.Forward;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// Issue 17's crash site: a checkpoint of a calibration state past 2 GiB (a 4-layer llama-3-8b at 250 × 2048 tokens
/// died at its first checkpoint; a 70B's state passes 2 GiB at the defaults). The state is held one array per row and
/// streamed to and from the checkpoint, which must give back every value, the token ids and the dropped rows.
/// </summary>
[TestFixture, Category(LargeTests.Category), NonParallelizable]
public class LargeCheckpointTests
{
    // 33 rows × 2048 tokens × 8192 wide (a 70B's hidden size): 2.2 GB of float32 states.
    private const int Rows = 33, Tokens = 2048, Width = 8192;

    /// <summary>Exact in float32, different per row, token and channel.</summary>
    private static float Value(int row, int i) => row * 1000 + i % 997 - (i >> 20);

    [Test]
    public void ACalibrationStatePast2GiBIsSavedAndRestoredWhole()
    {
        long bytes = HiddenStates.Bytes(Rows, Tokens, Width);
        Assert.That(bytes, Is.GreaterThan(int.MaxValue));
        using var gate = LargeTests.Require(memoryBytes: 2 * bytes + (1L << 30), diskBytes: bytes + (1L << 29), Path.GetTempPath());
        using var dir = new TempDirectory();
        // In a method of its own, so its arrays are garbage when the gate's release collects them.
        SaveAndLoad(dir, bytes);
    }

    private static void SaveAndLoad(TempDirectory dir, long bytes)
    {
        var clock = Stopwatch.StartNew();

        var ids = Enumerable.Range(0, Rows).Select(r => Enumerable.Range(0, Tokens).Select(t => (r * 31 + t) % 4096).ToArray()).ToList();
        var hidden = new HiddenStates(Rows, Tokens, Width);
        Parallel.For(0, Rows, r =>
        {
            var row = hidden.Row(r);
            for (int i = 0; i < row.Length; i++)
                row[i] = Value(r, i);
        });
        var state = new CalibrationState(ids, hidden, [5, 20]);
        var progress = new JobProgress(3, new Dictionary<string, string> { ["seed"] = "0" }, [], [], ["a warning"]);
        var checkpoint = new JobCheckpoint(dir.Path);
        checkpoint.Save(progress, state);
        var file = new FileInfo(Path.Combine(checkpoint.Current, "state.safetensors"));
        Assert.That(file.Length, Is.GreaterThan(bytes));
        TestContext.Out.WriteLine($"saved {file.Length >> 20} MiB in {clock.Elapsed.TotalSeconds:F1} s");

        var (loadedProgress, loaded, _) = checkpoint.Load();
        Assert.That(loadedProgress.NextModule, Is.EqualTo(3));
        Assert.That(loadedProgress.Warnings, Is.EqualTo(new[] { "a warning" }));
        Assert.That(loaded.BadRows, Is.EqualTo(new[] { 5, 20 }));
        Assert.That(loaded.Rows, Is.EqualTo(ids));
        var restored = loaded.Hidden!;
        Assert.That((restored.Rows, restored.Tokens, restored.Width), Is.EqualTo((Rows, Tokens, Width)));
        for (int r = 0; r < Rows; r++)
            Assert.That(restored.Row(r).SequenceEqual(hidden.Row(r)), Is.True, $"row {r}");
        TestContext.Out.WriteLine($"saved and restored in {clock.Elapsed.TotalSeconds:F1} s");
    }
}
