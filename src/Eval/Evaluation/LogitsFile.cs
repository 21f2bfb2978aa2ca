using System.Runtime.InteropServices;
using Converter.Formats.Safetensors;

namespace Converter.Eval.Evaluation;

/// <summary>
/// Writes a stream's logits as one float32 safetensors tensor <c>logits</c>, (rows, length, vocab) or, for a single
/// row given as a flat id array, (length, vocab) — the layouts other implementations' outputs come in, so the file
/// can be compared with theirs directly. The values go from the stream's activations to the file one position at a
/// time, never through a second full copy (a 100 × 2048 × 152k run is 125 GB); the file is written atomically.
/// </summary>
public static class LogitsFile
{
    public const string TensorName = "logits";

    /// <returns>The shape written.</returns>
    public static long[] Write(string path, ModelStream stream, bool dropRowAxis)
    {
        int rows = stream.RowCount, tokens = stream.Tokens;
        if (dropRowAxis && rows != 1)
            throw new ArgumentException($"only one row can be written without the row axis, the stream has {rows}", nameof(dropRowAxis));
        int vocab = stream.Row(0).Width;
        long[] shape = dropRowAxis ? [tokens, vocab] : [rows, tokens, vocab];
        var writer = new SafetensorsWriter();
        writer.Add(PendingTensor.FromProducer(TensorName, DType.F32, shape, output =>
        {
            for (int r = 0; r < rows; r++)
            {
                var values = stream.Row(r).Values;
                // Position by position: a whole row's bytes can pass 2 GiB, more than one span can address.
                for (int t = 0; t < tokens; t++)
                    output.Write(MemoryMarshal.AsBytes(values.Span.Slice(t * vocab, vocab)));
            }
        }));
        writer.Write(path);
        return shape;
    }
}
