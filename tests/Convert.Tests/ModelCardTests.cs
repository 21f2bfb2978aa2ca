using System.Text.Json.Nodes;
using Converter.Conversion.Pipeline;
using Converter.TestSupport;
using Converter.Trellis.Codebooks;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>The model card's pieces as tables: the Hub id of a source, the license carried over, the rendered lines.</summary>
public class ModelCardTests
{
    [TestCase("/cache/hub/models--meta-llama--Llama-3.1-8B-Instruct/snapshots/0e9e39f", "{}", "meta-llama/Llama-3.1-8B-Instruct")]
    [TestCase("/data/qwen3", """{"_name_or_path": "Qwen/Qwen3-8B"}""", "Qwen/Qwen3-8B")]
    [TestCase("/data/m", """{"_name_or_path": "/home/someone/models/llama"}""", null)]
    [TestCase("/data/m", """{"_name_or_path": "./llama/v2"}""", null)]
    [TestCase("/data/m", """{"_name_or_path": "llama"}""", null)]
    [TestCase("/data/m", """{"_name_or_path": 3}""", null)]
    [TestCase("/data/m", "{}", null)]
    public void BaseModelIdComesFromTheHubCacheOrTheConfig(string dir, string config, string? id) =>
        Assert.That(BaseModelId.Find(dir, JsonNode.Parse(config)!.AsObject()), Is.EqualTo(id));

    [Test]
    public void TheSourceLicenseIsCarriedOver()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("README.md"), "---\nlicense: other\nlicense_name: llama3.1\nlicense_link: LICENSE\nextra:\n  license: nested\ntags:\n- x\n---\n# Model\nlicense: not front matter\n");
        Assert.That(SourceLicense.Read(dir.Path), Is.EqualTo(new[] { "license: other", "license_name: llama3.1", "license_link: LICENSE" }));
        File.WriteAllText(dir.File("README.md"), "# A card without front matter\nlicense: mit\n");
        Assert.That(SourceLicense.Read(dir.Path), Is.Empty);
        File.Delete(dir.File("README.md"));
        Assert.That(SourceLicense.Read(dir.Path), Is.Empty);
    }

    [Test]
    public void ACardStatesWhatWasConverted()
    {
        var facts = new ModelCardFacts("/models/Llama-3.1-8B", "meta-llama/Llama-3.1-8B", "LlamaForCausalLM", 3.5, 3.521, 6, CodebookSpec.Default(CodebookKind.ThreeInst),
            "cal.txt", 250, 2048, 7, "trellis-dotnet 9.9.9", "1.4.1", new DateOnly(2026, 12, 3), ["license: llama3.1"], "KL divergence 0.0123 on 16 rows × 256 tokens.");
        var card = ModelCard.Render(facts);
        Assert.That(card, Does.StartWith("---\nlicense: llama3.1\nbase_model: meta-llama/Llama-3.1-8B\nbase_model_relation: quantized\nlibrary_name: exllamav3\n"));
        Assert.That(card, Does.Contain("\n# Llama-3.1-8B EXL3 3.50 bpw\n"));
        Assert.That(card, Does.Contain("| source model | `/models/Llama-3.1-8B` ([meta-llama/Llama-3.1-8B](https://huggingface.co/meta-llama/Llama-3.1-8B)) |"));
        Assert.That(card, Does.Contain("| bits per weight | 3.50 (3.521 with the suh/svh scales) |"));
        Assert.That(card, Does.Contain("| head bits | 6 |"));
        Assert.That(card, Does.Contain("| codebook | 3inst |"), "3INST has no multiplier to state");
        Assert.That(card, Does.Contain("| calibration | 250 rows × 2048 tokens of cal.txt, seed 7 |"));
        Assert.That(card, Does.Contain("| converter | trellis-dotnet 9.9.9 |"));
        Assert.That(card, Does.Contain("| date | 2026-12-03 |"));
        Assert.That(card, Does.Contain("## Evaluation\n\nKL divergence 0.0123 on 16 rows × 256 tokens.\n"));
        Assert.That(card, Does.Not.Contain("Warning"));
    }
}
