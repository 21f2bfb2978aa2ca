namespace Converter.Conversion.Reporting;

/// <summary>Reports the step a long job is on; synchronous so the display never lags the work.</summary>
public interface IStepProgress
{
    void Step(string description);

    /// <summary>A log line that must not tear the live display.</summary>
    void Log(string line);
}
