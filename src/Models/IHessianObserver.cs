using Converter.Regularize.Hessian;

namespace Converter.Models;

/// <summary>
/// An observer whose only use of a group's input is its Hessian sum: a backend that holds the input on a GPU can add
/// it to the group's accumulator there instead of handing over a host copy (<see cref="ILinearInputObserver"/>).
/// </summary>
public interface IHessianObserver : ILinearInputObserver
{
    /// <summary>The accumulator of <paramref name="group"/>'s Hessian, created on first use.</summary>
    HessianAccumulator AccumulatorFor(LinearGroup group);
}
