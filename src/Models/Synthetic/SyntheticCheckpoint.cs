using Converter.Compute.Randomness;
using Converter.Formats.HuggingFace;
using Converter.Formats.IO;
using Converter.Formats.Numerics;
using Converter.Formats.Safetensors;
using Converter.Models.Modules;

namespace Converter.Models.Synthetic;

/// <summary>
/// Writes a Hugging Face checkpoint with random bf16 weights in a given shape, so conversion speed can be measured at
/// real sizes without downloading weights. Weights are N(0, 0.02²) like a fresh initialization, with a few input
/// channels of every linear scaled up (activation-outlier channels are what the regularization is for). Tensors are
/// generated while being written, one at a time, so memory stays small whatever the model size.
/// </summary>
public static class SyntheticCheckpoint
{
    private const float WeightStd = 0.02f;
    private const float OutlierGain = 8f;

    /// <param name="outliers">Input channels per linear with larger weights.</param>
    /// <param name="tokenizerFiles">Files written beside the weights as they are (tokenizer.json, …), by file name; null writes none.</param>
    public static CheckpointWriteResult Write(string outDir, SyntheticShape shape, int seed, int outliers, long shardBytes,
        IReadOnlyDictionary<string, byte[]>? tokenizerFiles)
    {
        Directory.CreateDirectory(outDir);
        var configJson = shape.ToConfigJson();
        var configPath = Path.Combine(outDir, ModelConfig.FileName);
        AtomicFile.WriteAllText(configPath, configJson.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        var model = TransformerModel.FromConfig(ModelConfig.Load(outDir));

        var writer = new ShardedSafetensorsWriter(shardBytes);
        var written = new HashSet<string>();
        foreach (var module in model.Modules)
        {
            var linearWeights = module.Linears.ToDictionary(l => l.WeightTensor);
            // A router is a linear outside every quantized group (it stays unquantized), so Linears does not list it.
            if (module is DecoderBlock { FeedForward: SparseMoe moe })
                linearWeights[moe.Router.WeightTensor] = moe.Router;
            var biases = module.Linears.Where(l => l.BiasTensor is not null).ToDictionary(l => l.BiasTensor!);
            var tensors = new List<PendingTensor>();
            // A tied head names the embedding's tensor, already written with the embedding.
            foreach (var name in module.TensorNames.Where(written.Add))
            {
                int tensorSeed = StableSeed.For(seed, name);
                if (linearWeights.TryGetValue(name, out var linear))
                    tensors.Add(Random(name, [linear.OutFeatures, linear.InFeatures], tensorSeed, outliers));
                else if (biases.TryGetValue(name, out var withBias))
                    tensors.Add(Random(name, [withBias.OutFeatures], tensorSeed, 0));
                else if (module is EmbeddingModule)
                    tensors.Add(Random(name, [shape.Vocab, shape.Hidden], tensorSeed, 0));
                else
                    tensors.Add(NormWeight(name, name.Contains("q_norm") || name.Contains("k_norm") ? shape.HeadDim : shape.Hidden, tensorSeed));
            }
            if (tensors.Count > 0)
                writer.AddModule(tensors);
        }
        var result = writer.Write(outDir);
        foreach (var (file, bytes) in tokenizerFiles ?? new Dictionary<string, byte[]>())
            AtomicFile.WriteAllBytes(Path.Combine(outDir, file), bytes);
        return result;
    }

    /// <summary>Rows generated per parallel batch: enough work per core, a few MiB of buffer.</summary>
    private const int RowsPerBatch = 256;

    private static PendingTensor Random(string name, long[] shape, int seed, int outliers) =>
        PendingTensor.FromProducer(name, DType.BF16, shape, stream =>
        {
            int cols = (int)shape[^1];
            long rows = shape.Length == 1 ? 1 : shape[0];
            var rng = new Random(seed);
            var gain = Enumerable.Repeat(WeightStd, cols).ToArray();
            for (int placed = 0; placed < Math.Min(outliers, cols);)
            {
                int c = rng.Next(cols);
                if (gain[c] == WeightStd)
                {
                    gain[c] = WeightStd * OutlierGain;
                    placed++;
                }
            }
            // Every row draws from its own generator seeded by (tensor, row), so rows fill in parallel and the
            // weights do not depend on the thread count (an 8B model is 8·10⁹ draws: serially, minutes).
            var values = new float[RowsPerBatch * cols];
            var bits = new ushort[RowsPerBatch * cols];
            for (long first = 0; first < rows; first += RowsPerBatch)
            {
                int count = (int)Math.Min(RowsPerBatch, rows - first);
                Parallel.For(0, count, i =>
                {
                    var row = values.AsSpan(i * cols, cols);
                    var generator = new SplitMix64((ulong)(uint)seed << 32 ^ (ulong)(first + i) * 0x9E3779B97F4A7C15UL);
                    for (int c = 0; c < cols; c++)
                        row[c] = (float)generator.NextNormal() * gain[c];
                    BFloat16.FromSingle(row, bits.AsSpan(i * cols, cols));
                });
                stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(bits.AsSpan(0, count * cols)));
            }
        });

    /// <summary>SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast generator with good statistics per seed.</summary>
    private struct SplitMix64(ulong state)
    {
        private ulong _state = state;

        private ulong Next()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>Uniform in (0, 1]: the top 53 bits, shifted off zero so the logarithm is finite.</summary>
        private double NextUniform() => ((Next() >> 11) + 1) * (1.0 / (1UL << 53));

        /// <summary>N(0, 1) by Box–Muller.</summary>
        public double NextNormal() => Math.Sqrt(-2 * Math.Log(NextUniform())) * Math.Cos(2 * Math.PI * NextUniform());
    }

    private static PendingTensor NormWeight(string name, int size, int seed)
    {
        var rng = new Random(seed);
        var values = Enumerable.Range(0, size).Select(_ => (float)(1 + 0.1 * Normal(rng))).ToArray();
        return PendingTensor.FromFloat32(name, [size], values, DType.BF16);
    }

    private static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
