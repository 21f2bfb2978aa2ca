using Converter.Conversion;
using Converter.Conversion.Calibration;
using Converter.Conversion.Pipeline;
using Converter.Formats.IO;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// The conversion library (src/Conversion) is usable without the CLI: it references no console or command-line
/// package, and driven directly through <see cref="ConversionSession"/> it writes the same model as `trellis convert`.
/// </summary>
public class ConversionLibraryTests
{
    [Test]
    public void LibraryReferencesNoConsoleOrCommandLinePackage()
    {
        var references = typeof(ConversionPipeline).Assembly.GetReferencedAssemblies().Select(a => a.Name).ToList();
        Assert.That(references, Does.Not.Contain("Spectre.Console").And.Not.Contain("System.CommandLine").And.Not.Contain("trellis"));
        Assert.That(references, Does.Contain("Converter.Models"), "sanity: the list is the library's references");
    }

    [Test]
    public void LibraryConversionWritesWhatTheCliWrites()
    {
        var model = SyntheticModelFixture.ModelDir;
        // The CLI's side is the run's shared conversion at these very settings (SyntheticModelFixture.ConvertArgs).
        var viaCli = SharedConversions.OfSyntheticModel(SyntheticModelFixture.LayoutBits);

        var viaLibrary = SyntheticModelFixture.NewPath("library");
        var libraryLog = new StringWriter();
        var settings = new ConvertSettings
        {
            ModelDir = model,
            OutDir = viaLibrary,
            WorkDir = viaLibrary + ".work",
            Bits = SyntheticModelFixture.LayoutBits,
            HeadBits = 16,
            CalRows = 8,
            CalCols = 64,
            CalData = CalibrationSource.FromText(TextSource.FromFile(SyntheticModelFixture.CalText)),
            CheckpointInterval = TimeSpan.Zero,
        };
        var summary = new ConversionPipeline(settings, ConversionSession.LogOnly(libraryLog)).Run();

        Assert.That(summary, Is.Not.Null);
        Assert.That(libraryLog.ToString(), Does.Contain("convert [1/"), "progress went to the session's log as plain lines");
        Assert.That(File.ReadAllBytes(Path.Combine(viaLibrary, "model.safetensors")),
            Is.EqualTo(File.ReadAllBytes(Path.Combine(viaCli, "model.safetensors"))));
    }

    [Test]
    public void InvalidDeviceIsASettingsErrorNotAConsoleOne()
    {
        var settings = new ConvertSettings
        {
            ModelDir = SyntheticModelFixture.ModelDir,
            OutDir = SyntheticModelFixture.NewPath("bad-device"),
            WorkDir = SyntheticModelFixture.NewPath("bad-device-work"),
            Bits = 3,
            Device = "tpu:0",
        };
        var pipeline = new ConversionPipeline(settings, ConversionSession.LogOnly(TextWriter.Null));
        Assert.Throws<InvalidSettingsException>(() => pipeline.Run());
        Assert.That(Directory.Exists(settings.OutDir), Is.False);
    }
}
