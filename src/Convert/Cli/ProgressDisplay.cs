using Spectre.Console;

namespace Converter.Cli;

/// <summary>Reports the step a long job is on; synchronous so the display never lags the work.</summary>
public interface IStepProgress
{
    void Step(string description);

    /// <summary>A log line that must not tear the live display.</summary>
    void Log(string line);
}

/// <summary>
/// Progress of a job with a known number of steps: a Spectre.Console bar with ETA on a terminal, one plain log
/// line per step (with elapsed time and ETA) otherwise, so redirected logs stay readable.
/// </summary>
public static class ProgressDisplay
{
    public static T Run<T>(CliContext context, string title, int totalSteps, Func<IStepProgress, T> work)
    {
        if (!context.Interactive)
            return work(new LogLines(context.Log, title, totalSteps));
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(context.Log) });
        T result = default!;
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(title, maxValue: totalSteps);
                result = work(new BarSteps(console, task, title));
                task.Value = totalSteps;
            });
        return result;
    }

    private sealed class BarSteps(IAnsiConsole console, ProgressTask task, string title) : IStepProgress
    {
        public void Log(string line) => console.MarkupLine(Markup.Escape(line));

        private bool _started;

        public void Step(string description)
        {
            if (_started)
                task.Increment(1);
            _started = true;
            task.Description = $"{title}: {Markup.Escape(description)}";
        }
    }

    private sealed class LogLines(TextWriter log, string title, int total) : IStepProgress
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
