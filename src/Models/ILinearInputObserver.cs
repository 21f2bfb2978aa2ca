using Converter.Compute;

namespace Converter.Models;

/// <summary>
/// Sees the input activations of every linear layer during a forward pass, e.g. to accumulate the Hessian XᵀX
/// of each <see cref="LinearGroup"/> from calibration rows.
/// </summary>
public interface ILinearInputObserver
{
    /// <summary>
    /// Called once per module forward and group, just before the group's layers multiply <paramref name="input"/>
    /// (rows·tokens, in). The matrix belongs to the forward pass: read it, do not modify or keep it.
    /// </summary>
    void OnLinearInput(LinearGroup group, Matrix input);

    /// <summary>
    /// Whether <paramref name="group"/>'s input is wanted at all: a capture of one sublayer's groups
    /// (<see cref="HessianCapture"/> with a group set) skips the others, so a GPU forward neither sums nor copies them.
    /// </summary>
    bool Observes(LinearGroup group) => true;
}
