using Converter.Conversion.Pipeline;
using Converter.Formats.HuggingFace;
using Converter.Formats.Safetensors;
using Converter.Models;
using Converter.TestSupport;
using NUnit.Framework;

namespace Converter.Convert.Tests;

/// <summary>
/// The calibration rows' states through the module loop (docs/exl3-format.md §5.2 step 5), on a random two-layer llama:
/// 20 rows of 512 tokens run in three chunks of 8 rows, and every advance writes its outputs over its inputs.
/// </summary>
public sealed class CalibrationStateTests
{
    private const int RowCount = 20, Tokens = 512;

    private CheckpointReader _checkpoint = null!;
    private TransformerModel _model = null!;
    private CalibrationState _state = null!;

    /// <summary>Random token rows advanced through the embedding of the random model.</summary>
    [SetUp]
    public void AdvanceThroughTheEmbedding()
    {
        _checkpoint = CheckpointReader.Open(RepoPaths.TestModel("rand-llama31"));
        _model = TransformerModel.FromConfig(ModelConfig.Load(RepoPaths.TestModel("rand-llama31")));
        var rng = new Random(4);
        var rows = Enumerable.Range(0, RowCount).Select(_ => Enumerable.Range(0, Tokens).Select(_ => rng.Next(_model.Spec.VocabSize)).ToArray()).ToList();
        _state = new CalibrationState(rows, null, []);
        _model.Embedding.Load(_checkpoint);
        Assert.That(_state.Advance(_model.Embedding), Is.Empty);
        Assert.That((_state.Hidden!.Rows, _state.Hidden.Tokens), Is.EqualTo((RowCount, Tokens)));
    }

    [TearDown]
    public void CloseCheckpoint() => _checkpoint.Dispose();

    [Test]
    public void AdvanceStoresWhatForwardComputesStepAfterStep()
    {
        var (checkpoint, model, state) = (_checkpoint, _model, _state);
        var all = state.GoodRows.ToList();
        foreach (var layer in model.Layers)
        {
            layer.Load(checkpoint);
            var expected = state.Forward(layer, all, null);
            var firstThree = state.Forward(layer, all, null, keepRows: 3);
            Assert.That(firstThree.Data, Is.EqualTo(expected.Data.AsSpan(0, 3 * Tokens * expected.Cols).ToArray()), "keepRows returns the first rows' outputs");
            var starts = new List<int>();
            var streamed = new List<float>();
            state.ForwardChunks(layer, all, (start, outputs) =>
            {
                starts.Add(start);
                streamed.AddRange(outputs.Data);
            });
            Assert.That(starts, Is.EqualTo(new[] { 0, 8, 16 }), "chunks of 8 rows come in order");
            Assert.That(streamed, Is.EqualTo(expected.Data), "the chunks together are Forward's outputs");
            var before = state.Hidden!;
            Assert.That(state.Advance(layer), Is.Empty);
            Assert.That(state.Hidden, Is.SameAs(before), "the outputs replaced the inputs in place: one set of states, no new one per step");
            for (int row = 0; row < RowCount; row++)
                Assert.That(state.Hidden!.Row(row).ToArray(), Is.EqualTo(expected.RowRange(row * Tokens, Tokens).ToArray()), $"{layer.Name}, row {row}");
            layer.Release();
        }
    }

    /// <summary>Outputs replace their own inputs, so a module that changes the width (the head) cannot advance the states.</summary>
    [Test]
    public void AModuleThatChangesTheWidthIsRefusedBeforeAnyStateIsOverwritten()
    {
        var (checkpoint, model, state) = (_checkpoint, _model, _state);
        var before = state.Hidden!.Row(0).ToArray();
        model.Head.Load(checkpoint);
        var e = Assert.Throws<InvalidOperationException>(() => state.Advance(model.Head));
        Assert.That(e!.Message, Does.Contain($"width {model.Spec.HiddenSize} into {model.Spec.VocabSize} cannot advance them in place"));
        Assert.That(state.Hidden!.Row(0).ToArray(), Is.EqualTo(before));
    }

    [Test]
    public void RowsThatTurnNonFiniteAreDroppedAndNotRunAgain()
    {
        var (checkpoint, model, state) = (_checkpoint, _model, _state);
        // Row 11 (the second chunk) gets a NaN in its first token: attention carries it to all of the row's tokens.
        state.Hidden!.Row(11)[0] = float.NaN;

        model.Layers[0].Load(checkpoint);
        Assert.That(state.Advance(model.Layers[0]), Is.EqualTo(new[] { 11 }));
        Assert.That(state.BadRows, Is.EquivalentTo(new[] { 11 }));
        Assert.That(state.GoodRows, Does.Not.Contain(11));

        model.Layers[1].Load(checkpoint);
        Assert.That(state.Advance(model.Layers[1]), Is.Empty);
        foreach (int row in state.GoodRows)
            Assert.That(state.Hidden!.Row(row).ToArray(), Has.All.Matches<float>(float.IsFinite), $"row {row}");
    }

    [Test]
    public void TooManyNonFiniteRowsStopTheConversion()
    {
        var (checkpoint, model, state) = (_checkpoint, _model, _state);
        // 3 of 20 rows is more than the 10% exllamav3 tolerates.
        foreach (int row in new[] { 2, 9, 17 })
            state.Hidden!.Row(row)[0] = float.PositiveInfinity;
        model.Layers[0].Load(checkpoint);
        var e = Assert.Throws<InvalidDataException>(() => state.Advance(model.Layers[0]));
        Assert.That(e!.Message, Does.Contain("3 of 20 calibration rows have non-finite hidden states"));
    }

    /// <summary>The embedding writes each row's states straight where they are held (CalibrationState.Embed), not as a module run in chunks.</summary>
    [Test]
    public void TheEmbeddingWritesEachRowAsItsForwardComputesIt()
    {
        var (model, state) = (_model, _state);
        for (int row = 0; row < RowCount; row++)
        {
            var forward = model.Embedding.Forward(SequenceBatch.FromTokens([state.Rows[row]])).RequireValues("embedding");
            Assert.That(state.Hidden!.Row(row).ToArray(), Is.EqualTo(forward.Data), $"row {row}");
        }
        var table = model.Embedding.Table;
        int id = state.Rows[7][300];
        Assert.That(state.Hidden!.Row(7).Slice(300 * table.Cols, table.Cols).ToArray(), Is.EqualTo(table.Row(id).ToArray()), "row 7, position 300: the table's row of its token");
    }

    [Test]
    public void ATokenOutsideTheVocabularyIsNamedByItsRowAndPosition()
    {
        var rows = Enumerable.Range(0, 4).Select(_ => new int[Tokens]).ToList();
        rows[2][5] = _model.Spec.VocabSize;
        using var state = new CalibrationState(rows, null, []);
        var e = Assert.Throws<ArgumentException>(() => state.Advance(_model.Embedding));
        Assert.That(e!.Message, Does.Contain($"token id {_model.Spec.VocabSize} at row 2, position 5 is outside the vocabulary"));
    }

    /// <summary>A scaled embedding (Gemma's √hidden) can overflow where the table, checked finite when read, cannot; an
    /// infinite scale overflows every value.</summary>
    [Test]
    public void AnEmbeddingWhoseScaleOverflowsDropsItsRows()
    {
        var scaled = new Models.Modules.EmbeddingModule(_model.Embedding.Name, _model.Spec.VocabSize, _model.Spec.HiddenSize, scale: float.PositiveInfinity);
        scaled.Load(_checkpoint);
        using var state = new CalibrationState(_state.Rows, null, []);
        var e = Assert.Throws<InvalidDataException>(() => state.Advance(scaled));
        Assert.That(e!.Message, Does.Contain($"{RowCount} of {RowCount} calibration rows have non-finite hidden states"));
    }
}
