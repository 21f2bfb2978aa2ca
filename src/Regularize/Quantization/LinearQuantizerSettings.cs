using Converter.Compute;
using Converter.Regularize.Hessian;

namespace Converter.Regularize.Quantization;

/// <summary>How one linear is quantized; K and codebook vary per tensor, the rest per run.</summary>
public sealed record LinearQuantizerSettings(
    OutScalesMode OutScales = OutScalesMode.Always,
    HessianBasis Basis = HessianBasis.Exact,
    double Sigma = GroupHessian.DefaultSigma,
    int MaxThreads = 0)
{
    /// <summary>Where the Cholesky and proxy-error products run.</summary>
    public IDenseAlgebra Algebra { get; init; } = CpuDenseAlgebra.Instance;

    /// <summary>Where the LDLQ block loop runs (§3.7): the host, or a device solver that keeps it on the GPU.</summary>
    public ILdlqSolver Ldlq { get; init; } = HostLdlqSolver.Instance;

    /// <summary>Scale choice and refinement (issue 13 part 3); the damping of <see cref="Tuning"/> is applied where the Hessian is finalized.</summary>
    public QuantizerTuning Tuning { get; init; } = QuantizerTuning.Exllamav3;

    /// <summary>
    /// Whether W and its regularized target may be held where <see cref="Ldlq"/>'s block loop runs (<see cref="ILdlqSolver.Hold"/>)
    /// rather than on the host: a GPU then regularizes, samples the scale search's tiles and traces the proxy error in
    /// its own memory (8 bytes a weight more there while the linear is quantized, so not in a lean plan).
    /// </summary>
    public bool TargetOnDevice { get; init; }
}
