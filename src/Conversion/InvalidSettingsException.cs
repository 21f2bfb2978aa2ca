namespace Converter.Conversion;

/// <summary>
/// The settings of a job name something invalid or inconsistent (an unknown device, a resumed job whose settings
/// changed): the caller's mistake, not the model's. The CLI reports it as a usage error (exit code 2).
/// </summary>
public sealed class InvalidSettingsException(string message) : Exception(message);
