namespace Converter.Cli;

/// <summary>The command line names something invalid (unknown codebook, K out of range, …): exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
