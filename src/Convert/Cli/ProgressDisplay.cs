using Converter.Conversion.Reporting;
using Spectre.Console;

namespace Converter.Cli;

/// <summary>
/// Progress of a job with a known number of steps: a Spectre.Console bar with ETA on a terminal, one plain log
/// line per step (with elapsed time and ETA, <see cref="LogLineProgress"/>) otherwise, so redirected logs stay readable.
/// </summary>
public sealed class ProgressDisplay(TextWriter log) : IProgressDisplay
{
    public static IProgressDisplay For(TextWriter log, bool interactive) => interactive ? new ProgressDisplay(log) : new LogLineProgress(log);

    public static T Run<T>(CliContext context, string title, int totalSteps, Func<IStepProgress, T> work) =>
        context.Conversion.Progress.Run(title, totalSteps, work);

    public T Run<T>(string title, int totalSteps, Func<IStepProgress, T> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(log) });
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
}
