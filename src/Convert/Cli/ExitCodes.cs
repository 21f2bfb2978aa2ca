namespace Converter.Cli;

/// <summary>Process exit codes (DESIGN.md "The CLI").</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
}
