using Converter.Compute;
using Converter.Regularize.Ldl;
using Converter.Trellis.Viterbi;

namespace Converter.Regularize.Quantization;

/// <summary>
/// <see cref="BlockLdl.Decompose"/> and the block loop of <see cref="Ldlq.Quantize"/> on the host; the Cholesky and the
/// encoder run wherever they were made.
/// </summary>
public sealed class HostLdlqSolver : ILdlqSolver
{
    public static HostLdlqSolver Instance { get; } = new();

    private HostLdlqSolver()
    {
    }

    public string Device => "host";

    public BlockLdlResult Factor(float[] hessian, int k, double sigma, IDenseAlgebra algebra) =>
        BlockLdl.Decompose(Array.ConvertAll(hessian, v => (double)v), k, sigma, algebra);

    public LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, float[]? factor, ITileEncoder encoder, float[]? quantizedInto = null) =>
        Ldlq.Quantize(wr, k, n, factor, encoder, quantizedInto);
}
