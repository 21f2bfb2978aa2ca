namespace Converter.Conversion.Reporting;

/// <summary>
/// How a job with a known number of steps is shown while it runs. The library writes plain log lines
/// (<see cref="LogLineProgress"/>); the CLI draws a live bar with ETA when a person is watching a terminal.
/// </summary>
public interface IProgressDisplay
{
    T Run<T>(string title, int totalSteps, Func<IStepProgress, T> work);
}
