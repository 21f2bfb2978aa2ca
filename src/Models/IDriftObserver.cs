using Converter.Compute;
using Converter.Regularize.Hessian;

namespace Converter.Models;

/// <summary>
/// The quantized stream's side of the drift target's capture (<see cref="DriftCapture"/>) as a backend that holds the
/// inputs on a device can feed it: each group's Hessian sum as an <see cref="IHessianObserver"/>'s, and its cross sum
/// against the original stream's same rows, held on the device by <see cref="IOriginalInputHolder"/>. Where either
/// stream's rows are not on the device (or not finite), the backend hands a host copy to
/// <see cref="ILinearInputObserver.OnLinearInput"/> instead.
/// </summary>
public interface IDriftObserver : IHessianObserver
{
    /// <summary>The original stream's input of <paramref name="group"/> for the rows now arriving, if a device holds it; the caller then owns and disposes it.</summary>
    IResidentRows? TakeResidentOriginal(LinearGroup group);

    /// <summary>The cross sum of <paramref name="group"/>, created on first use.</summary>
    DriftAccumulator CrossFor(LinearGroup group);
}

/// <summary>The original stream's side of the drift target's capture: keeps a device copy of a group's input until the quantized stream's arrives.</summary>
public interface IOriginalInputHolder : ILinearInputObserver
{
    /// <summary>Takes ownership of <paramref name="input"/>, a device copy of <paramref name="group"/>'s input.</summary>
    void Hold(LinearGroup group, IResidentRows input);
}
