using Converter.Conversion.Calibration;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>Chat template shapes: detection from template text and model folders, and the exact text each shape renders, against hand-written strings.</summary>
public class ChatTemplateTests
{
    private static readonly ChatMessage[] Dialogue =
    [
        new("system", "Be brief."),
        new("user", "What is 2+2?"),
        new("assistant", "4"),
        new("user", "And 3+3?"),
        new("assistant", " 6 "),
    ];

    // Fragments of real templates of each family (enough to recognize them; the renderer does not execute them).
    private const string ChatMl = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
    private const string Llama3 = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}";
    private const string Gemma = "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}";
    private const string Mistral = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";
    private const string Phi3 = "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\\n' + message['content'] + '<|end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

    [TestCase(ChatMl, "chatml")]
    [TestCase(Llama3, "llama3")]
    [TestCase(Gemma, "gemma")]
    [TestCase(Mistral, "mistral")]
    [TestCase(Phi3, "phi3")]
    [TestCase("{% for m in messages %}{{ m['content'] }}{% endfor %}", ChatTemplate.UnrecognizedShape)]
    [TestCase("{{ '<|end|>' }}", ChatTemplate.UnrecognizedShape)]
    public void DetectsTheShapeFromTheTemplateText(string template, string shape) =>
        Assert.That(ChatTemplate.Detect(template, "</s>").Shape, Is.EqualTo(shape));

    [Test]
    public void NoTemplateIsPlain()
    {
        Assert.That(ChatTemplate.Detect(null, null).Shape, Is.EqualTo(ChatTemplate.PlainShape));
        Assert.That((ChatTemplate.Detect(null, null).IsPlain, ChatTemplate.Detect("{{ x }}", null).IsPlain, ChatTemplate.Detect(ChatMl, null).IsPlain), Is.EqualTo((true, true, false)));
    }

    [TestCase(ChatMl, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n" +
        "<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n 6 <|im_end|>\n")]
    [TestCase(Llama3, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n6<|eot_id|>")]
    [TestCase(Gemma, "<start_of_turn>user\nBe brief.\n\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n" +
        "<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n6<end_of_turn>\n")]
    [TestCase(Mistral, "[INST] Be brief.\n\nWhat is 2+2? [/INST]4</s>[INST] And 3+3? [/INST] 6 </s>")]
    [TestCase(Phi3, "<|system|>\nBe brief.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n4<|end|>\n<|user|>\nAnd 3+3?<|end|>\n<|assistant|>\n 6 <|end|>\n")]
    [TestCase(null, "System: Be brief.\nUser: What is 2+2?\nAssistant: 4\nUser: And 3+3?\nAssistant:  6 \n")]
    [TestCase("{{ messages }}", "System: Be brief.\nUser: What is 2+2?\nAssistant: 4\nUser: And 3+3?\nAssistant:  6 \n")]
    public void RendersEachShape(string? template, string expected) =>
        Assert.That(ChatTemplate.Detect(template, "</s>").Render(Dialogue), Is.EqualTo(expected));

    [Test]
    public void MistralEndsRepliesWithTheConfiguredEosToken() =>
        Assert.That(ChatTemplate.Detect(Mistral, "<|eos|>").Render([new("user", "a"), new("assistant", "b")]), Is.EqualTo("[INST] a [/INST]b<|eos|>"));

    [Test]
    public void ReadsTheTemplateOfAModelFolder()
    {
        using var dir = new TempDirectory("trellis-chat-");
        Assert.That(ChatTemplate.ForModel(dir.Path).Shape, Is.EqualTo("plain"), "no tokenizer_config.json");

        File.WriteAllText(dir.File("tokenizer_config.json"), "{\"eos_token\": {\"content\": \"<e>\"}, \"chat_template\": " + System.Text.Json.JsonSerializer.Serialize(Mistral) + "}");
        var mistral = ChatTemplate.ForModel(dir.Path);
        Assert.That(mistral.Render([new("user", "a"), new("assistant", "b")]), Is.EqualTo("[INST] a [/INST]b<e>"), "eos_token as {\"content\"}");

        File.WriteAllText(dir.File("tokenizer_config.json"), "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"<|im_start|>\"}, {\"name\": \"default\", \"template\": \"<start_of_turn>\"}]}");
        Assert.That(ChatTemplate.ForModel(dir.Path).Shape, Is.EqualTo("gemma"), "the template named default of a list");

        File.WriteAllText(dir.File("tokenizer_config.json"), "{\"bos_token\": \"<s>\"}");
        File.WriteAllText(dir.File("chat_template.jinja"), Llama3);
        Assert.That(ChatTemplate.ForModel(dir.Path).Shape, Is.EqualTo("llama3"), "chat_template.jinja when tokenizer_config.json has none");
    }

    [TestCase("{\"chat_template\": ")]
    [TestCase("{\"chat_template\": \"\\ud800\"}")]
    public void AMalformedTokenizerConfigNamesTheFile(string json)
    {
        using var dir = new TempDirectory("trellis-chat-");
        File.WriteAllText(dir.File("tokenizer_config.json"), json);
        var e = Assert.Throws<InvalidDataException>(() => ChatTemplate.ForModel(dir.Path));
        Assert.That(e!.Message, Does.StartWith(dir.File("tokenizer_config.json") + ": not valid JSON"));
    }
}
