namespace Converter.Compute;

/// <summary>
/// Rows of activations (rows, cols) kept in the memory of the device that computed them: a linear group's input from
/// the original model's stream, held until the quantized stream's same rows arrive (the drift target's cross sum), so
/// neither crosses to the host.
/// </summary>
public interface IResidentRows : IDisposable
{
    int Rows { get; }

    int Cols { get; }

    /// <summary>The values, row-major, in a new host array.</summary>
    float[] ToHost();
}
