using Converter.Cli.Commands.Eval;
using Converter.Cuda.Blas;

namespace Converter.Cli.Commands.Ppl;

/// <summary>
/// Bound and validated arguments of `trellis ppl`. The rows come from a text (<see cref="Text"/>) or from a token
/// ids file (<see cref="IdsPath"/>): exactly one of the two is set.
/// </summary>
/// <param name="Text">Text, rows, length (and the device); null with <paramref name="IdsPath"/>.</param>
/// <param name="IdsPath">The JSON token ids file of --ids; null for a text run.</param>
/// <param name="LogitsOut">The safetensors file of --logits-out, or null.</param>
/// <param name="GpuMath">The arithmetic of the GPU forward's products (--gpu-math).</param>
public sealed record PplOptions(string ModelDir, EvalData? Text, string? IdsPath, string Device, string? LogitsOut, bool Json, GpuMath GpuMath = GpuMath.Fp32);
