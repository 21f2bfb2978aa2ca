using Converter.Conversion.Calibration;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>`--cal-data FILE.jsonl`: the two row shapes, what is skipped, and a one-line error naming the file and line for anything else.</summary>
public class CalibrationJsonlTests
{
    [Test]
    public void ReadsTextAndMessageRows()
    {
        var documents = CalibrationJsonl.Read(new StringReader(
            "{\"text\": \"Hello there.\", \"id\": 7}\n\n   \n" +
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\", \"name\": \"x\"}], \"source\": \"s\"}\n"), "d.jsonl");
        Assert.That(documents, Has.Count.EqualTo(2), "blank lines are skipped");
        Assert.That((documents[0].Text, documents[0].Messages), Is.EqualTo(("Hello there.", (IReadOnlyList<ChatMessage>?)null)));
        Assert.That(documents[1].Text, Is.Null);
        Assert.That(documents[1].Messages, Is.EqualTo(new[] { new ChatMessage("user", "Hi"), new ChatMessage("assistant", "Hello") }), "other keys are ignored");
    }

    [TestCase("{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n", "d.jsonl:2: not valid JSON")]
    [TestCase("[1, 2]\n", "d.jsonl:1: expected a JSON object")]
    [TestCase("{\"text\": \"ok\"}\n\n{\"title\": \"no text\"}\n", "d.jsonl:3: expected exactly one of \"text\" and \"messages\"")]
    [TestCase("{\"text\": \"a\", \"messages\": []}\n", "d.jsonl:1: expected exactly one of")]
    [TestCase("{\"text\": 5}\n", "d.jsonl:1: \"text\" must be a non-empty string")]
    [TestCase("{\"text\": \"\"}\n", "d.jsonl:1: \"text\" must be a non-empty string")]
    [TestCase("{\"messages\": {\"role\": \"user\"}}\n", "d.jsonl:1: \"messages\" must be a non-empty array")]
    [TestCase("{\"messages\": []}\n", "d.jsonl:1: \"messages\" must be a non-empty array")]
    [TestCase("{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"content\": \"b\"}]}\n", "d.jsonl:1: messages[1] must be an object with string \"role\" and \"content\"")]
    [TestCase("{\"messages\": [{\"role\": \"user\", \"content\": 3}]}\n", "d.jsonl:1: messages[0] must be")]
    [TestCase("\n  \n", "d.jsonl: no calibration rows")]
    public void RejectsBadLinesNamingFileAndLine(string jsonl, string message)
    {
        var e = Assert.Throws<InvalidDataException>(() => CalibrationJsonl.Read(new StringReader(jsonl), "d.jsonl"));
        Assert.That(e!.Message, Does.StartWith(message));
        Assert.That(e.Message, Does.Not.Contain("\n"), "one line");
    }

    [Test]
    public void AMissingFileIsNamed()
    {
        var e = Assert.Throws<FileNotFoundException>(() => CalibrationJsonl.ReadFile("/nonexistent/cal.jsonl"));
        Assert.That(e!.Message, Is.EqualTo("/nonexistent/cal.jsonl: calibration data not found"));
    }

    [TestCase("data.jsonl", typeof(CalibrationSource.JsonlFile))]
    [TestCase("DATA.JSONL", typeof(CalibrationSource.JsonlFile))]
    [TestCase("data.txt", typeof(CalibrationSource.PlainText))]
    [TestCase("data.json", typeof(CalibrationSource.PlainText))]
    public void AFileIsJsonlByItsName(string path, Type kind) =>
        Assert.That(CalibrationSource.FromFile(path), Is.TypeOf(kind));
}
