using System.Diagnostics;
using System.Globalization;
using Converter.Compute;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Reporting;
using Converter.Cuda;
using Converter.Cuda.Blas;
using Converter.Cuda.Models;
using Converter.Formats.IO;
using Converter.Models;
using Converter.Models.Modules;

namespace Converter.Cli.Commands.Bench;

/// <summary>One variant of `trellis bench forward`: its math and attention choice, and what it measured.</summary>
/// <param name="FusedAttention">Whether the rows took the fused attention kernel (auto decides by row length).</param>
/// <param name="ForwardSeconds">All rows through the block, in calibration chunks, without an observer (the converter's forward pass).</param>
/// <param name="CaptureSeconds">The same with the Hessian capture observing every group (the converter's capture pass); null without --capture.</param>
/// <param name="Deviation">‖output − reference‖ / ‖reference‖ on the first chunk, the reference being FP32 with the batched products.</param>
public sealed record ForwardBenchRow(string Math, string Attention, bool FusedAttention, int Rows, int Tokens, double ForwardSeconds, double TokensPerSecond,
    double? CaptureSeconds, double Deviation);

/// <summary>
/// Times one synthetic decoder layer's GPU forward over rows × tokens, in the converter's calibration chunks
/// (<see cref="CalibrationState.ChunkRows"/>), once per math/attention variant, and says how far each variant's output
/// is from FP32 with the batched products. Issue 14's numbers (capture and forward of a llama-3-8b layer over
/// 250 × 2048 tokens) are one call of it.
/// </summary>
public static class ForwardBench
{
    public static int Execute(ForwardBenchOptions options, CliContext context)
    {
        var spec = SyntheticDecoderLayer.Shapes[options.Shape];
        using var backend = ComputeBackend.Open(options.Device);
        if (backend.Cuda is null || backend.Algebra is not CudaDenseAlgebra algebra)
            throw new CudaException($"bench forward measures the GPU forward and needs a GPU; {backend.Description}");
        int chunkRows = Math.Min(options.Rows, CalibrationState.ChunkRows(options.Tokens));
        context.Log.WriteLine($"bench forward: {options.Shape} layer, {options.Rows} rows × {options.Tokens} tokens in chunks of {chunkRows} rows, {backend.Description}");

        using var layer = new SyntheticDecoderLayer(spec, options.Seed);
        var rng = new Random(options.Seed + 1);
        var input = new float[(long)chunkRows * options.Tokens * spec.HiddenSize];
        for (long i = 0; i < input.LongLength; i++)
            input[i] = (rng.NextSingle() * 2 - 1) * 1.7320508f;

        float[] reference;
        using (var products = new CudaForwardBackend(algebra, new GpuForwardOptions(GpuMath.Fp32, GpuAttention.Products)))
            reference = Forward(layer.Block(algebra, products), input, chunkRows, options.Tokens, null);

        var rows = new List<ForwardBenchRow>();
        context.Output.WriteLine($"{"math",-5} {"attention",-9} {"path",-8} {"rows×tokens",12} {"forward s",10} {"tokens/s",10} {"capture s",10} {"vs fp32 products",17}");
        foreach (var variant in options.Variants)
        {
            using var forward = new CudaForwardBackend(algebra, variant);
            var block = layer.Block(algebra, forward);
            // The first chunk compiles the kernels and uploads the weights; it is also the one compared with the reference.
            var output = Forward(block, input, chunkRows, options.Tokens, null);
            double forwardSeconds = Time(() => AllRows(block, input, chunkRows, options, null));
            double? captureSeconds = null;
            if (options.Capture)
            {
                using var capture = new HessianCapture(algebra);
                captureSeconds = Time(() => AllRows(block, input, chunkRows, options, capture));
            }
            var row = new ForwardBenchRow(GpuForwardOptions.Name(variant.Math), GpuForwardOptions.Name(variant.Attention),
                CudaForwardBackend.TakesFusedAttention(variant.Attention, options.Tokens, spec.HeadDim), options.Rows, options.Tokens, forwardSeconds,
                (double)options.Rows * options.Tokens / forwardSeconds, captureSeconds, Relative(output, reference));
            rows.Add(row);
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{row.Math,-5} {row.Attention,-9} {(row.FusedAttention ? "fused" : "products"),-8} {$"{row.Rows}×{row.Tokens}",12} {row.ForwardSeconds,10:F2} " +
                $"{row.TokensPerSecond,10:F0} {(row.CaptureSeconds is { } c ? c.ToString("F2", CultureInfo.InvariantCulture) : "-"),10} {row.Deviation,17:E2}"));
        }
        if (options.JsonPath is { } path)
        {
            AtomicFile.WriteAllText(path, System.Text.Json.JsonSerializer.Serialize(new
            {
                device = backend.Description,
                date = DateTime.UtcNow,
                shape = options.Shape,
                rows = options.Rows,
                tokens = options.Tokens,
                chunk_rows = chunkRows,
                fused_attention_tokens = CudaForwardBackend.FusedAttentionTokens,
                variants = rows,
            }, JsonOutput.Options));
            context.Log.WriteLine($"bench forward: wrote {path}");
        }
        // A variant whose output is not finite is broken, not slow.
        return rows.All(r => double.IsFinite(r.Deviation)) ? ExitCodes.Ok : ExitCodes.Failure;
    }

    /// <summary>All rows through the block, chunk by chunk (the last one shorter when the rows do not divide), each chunk the same input.</summary>
    private static void AllRows(DecoderBlock block, float[] input, int chunkRows, ForwardBenchOptions options, ILinearInputObserver? observer)
    {
        for (int start = 0; start < options.Rows; start += chunkRows)
            Forward(block, input, Math.Min(chunkRows, options.Rows - start), options.Tokens, observer);
    }

    private static float[] Forward(DecoderBlock block, float[] input, int rows, int tokens, ILinearInputObserver? observer)
    {
        int hidden = block.Spec.HiddenSize;
        long count = (long)rows * tokens * hidden;
        var x = new Matrix(rows * tokens, hidden, count == input.LongLength ? input : input[..(int)count]);
        var batch = SequenceBatch.FromTokens(Enumerable.Range(0, rows).Select(_ => new int[tokens]).ToList()).WithValues(x);
        return block.Forward(batch, observer).RequireValues(block.Name).Data;
    }

    private static double Time(Action run)
    {
        var clock = Stopwatch.StartNew();
        run();
        return clock.Elapsed.TotalSeconds;
    }

    private static double Relative(float[] actual, float[] expected)
    {
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (!float.IsFinite(actual[i]))
                return double.PositiveInfinity;
            double e = actual[i] - (double)expected[i];
            num += e * e;
            den += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(num / den);
    }
}
