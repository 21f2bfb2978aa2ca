namespace Converter.Compute;

/// <summary><see cref="IResidentSteps"/> on the host: the array itself.</summary>
public sealed class HostResidentSteps : IResidentSteps
{
    private readonly float[] _values;

    /// <param name="values">rows × columns, row-major; held, not copied.</param>
    public HostResidentSteps(float[] values, int rows, int columns)
    {
        if (values.Length != (long)rows * columns)
            throw new ArgumentException($"{rows}×{columns} steps need {(long)rows * columns} values, got {values.Length}", nameof(values));
        _values = values;
        Rows = rows;
        Columns = columns;
    }

    public int Rows { get; }

    public int Columns { get; }

    public float[] HostValues() => _values;

    public void Dispose()
    {
    }
}
