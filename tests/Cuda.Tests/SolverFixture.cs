using Converter.Cuda.Blas;
using Converter.Cuda.Quantization;
using NUnit.Framework;

namespace Converter.Cuda.Tests;

/// <summary>cuda:0's dense algebra and LDLQ solver, made once for a fixture's tests (after <see cref="GpuFixture"/> opens the device).</summary>
public abstract class SolverFixture : GpuFixture
{
    protected CudaDenseAlgebra Algebra { get; private set; } = null!;

    protected CudaLdlqSolver Solver { get; private set; } = null!;

    [OneTimeSetUp]
    public void CreateSolver()
    {
        Algebra = new CudaDenseAlgebra(Cuda);
        Solver = new CudaLdlqSolver(Algebra);
    }

    [OneTimeTearDown]
    public void DisposeAlgebra() => Algebra?.Dispose();
}
