namespace Converter.Conversion.Reporting;

/// <summary>
/// Progress as one log line per step, with elapsed time and ETA: what redirected logs, CI and library callers get.
/// </summary>
public sealed class LogLineProgress(TextWriter log) : IProgressDisplay
{
    public T Run<T>(string title, int totalSteps, Func<IStepProgress, T> work) => work(new Lines(log, title, totalSteps));

    private sealed class Lines(TextWriter log, string title, int total) : IStepProgress
    {
        private readonly DateTime _start = DateTime.UtcNow;
        private int _done = -1;

        public void Log(string line) => log.WriteLine(line);

        public void Step(string description)
        {
            _done++;
            var elapsed = DateTime.UtcNow - _start;
            string eta = _done > 0 ? $", eta {Format(elapsed / _done * (total - _done))}" : "";
            log.WriteLine($"{title} [{_done + 1}/{total}] {description} (elapsed {Format(elapsed)}{eta})");
        }

        private static string Format(TimeSpan t) => t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss") : t.ToString(@"mm\:ss");
    }
}
