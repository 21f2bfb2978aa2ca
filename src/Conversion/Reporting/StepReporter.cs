namespace Converter.Conversion.Reporting;

/// <summary>Feeds library progress (<see cref="IProgress{T}"/> of step names) into a command's progress display.</summary>
public sealed class StepReporter(IStepProgress steps) : IProgress<string>
{
    public void Report(string value) => steps.Step(value);
}
