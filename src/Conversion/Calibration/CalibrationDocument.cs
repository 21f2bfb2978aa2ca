namespace Converter.Conversion.Calibration;

/// <summary>One chat turn of a dialogue: role (system, user, assistant, …) and content.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// One document of calibration data: a text, or a dialogue that is rendered through the model's chat template before
/// it is tokenized (<see cref="ChatTemplate"/>). Exactly one of the two is set.
/// </summary>
public sealed record CalibrationDocument
{
    public string? Text { get; private init; }
    public IReadOnlyList<ChatMessage>? Messages { get; private init; }

    public static CalibrationDocument FromText(string text) => new() { Text = text };

    public static CalibrationDocument FromMessages(IReadOnlyList<ChatMessage> messages) => new() { Messages = messages };
}
