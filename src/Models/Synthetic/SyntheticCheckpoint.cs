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
    public static CheckpointWriteResult Write(string outDir, SyntheticShape shape, int seed, int outliers, long shardBytes, string? tokenizerDir)
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
        if (tokenizerDir is not null)
        {
            foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
            {
                var src = Path.Combine(tokenizerDir, file);
                if (File.Exists(src))
                    AtomicFile.WriteAllBytes(Path.Combine(outDir, file), File.ReadAllBytes(src));
            }
        }
        return result;
    }

    private static PendingTensor Random(string name, long[] shape, int seed, int outliers) =>
        PendingTensor.FromProducer(name, DType.BF16, shape, stream =>
        {
            int cols = (int)shape[^1];
            long rows = shape.Length == 1 ? 1 : shape[0];
            var rng = new Random(seed);
            var loud = new HashSet<int>();
            while (loud.Count < Math.Min(outliers, cols))
                loud.Add(rng.Next(cols));
            var row = new float[cols];
            var bits = new ushort[cols];
            var bytes = new byte[cols * 2];
            for (long r = 0; r < rows; r++)
            {
                for (int c = 0; c < cols; c++)
                    row[c] = (float)(Normal(rng) * WeightStd * (loud.Contains(c) ? OutlierGain : 1));
                BFloat16.FromSingle(row, bits);
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(bits.AsSpan()).CopyTo(bytes);
                stream.Write(bytes);
            }
        });

    private static PendingTensor NormWeight(string name, int size, int seed)
    {
        var rng = new Random(seed);
        var values = Enumerable.Range(0, size).Select(_ => (float)(1 + 0.1 * Normal(rng))).ToArray();
        return PendingTensor.FromFloat32(name, [size], values, DType.BF16);
    }

    private static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
