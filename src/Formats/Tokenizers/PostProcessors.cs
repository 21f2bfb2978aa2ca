namespace Converter.Formats.Tokenizers;

/// <summary>
/// One tokenizer.json "post_processor", reduced to what it does to the ids of a single sequence when special
/// tokens are requested (pairs, type ids and offsets are not modelled).
/// </summary>
internal interface IPostProcessor
{
    List<int> AddSpecialTokens(List<int> ids);
}

internal sealed class SequencePostProcessor(IReadOnlyList<IPostProcessor> processors) : IPostProcessor
{
    public IReadOnlyList<IPostProcessor> Processors => processors;

    public List<int> AddSpecialTokens(List<int> ids)
    {
        foreach (var p in processors)
            ids = p.AddSpecialTokens(ids);
        return ids;
    }
}

/// <summary>The ByteLevel post-processor only trims offsets, which ids do not carry.</summary>
internal sealed class ByteLevelPostProcessor : IPostProcessor
{
    public List<int> AddSpecialTokens(List<int> ids) => ids;
}

/// <summary>
/// TemplateProcessing's "single" template: special-token ids before and after the sequence ("$A"), e.g.
/// BOS + $A for Llama.
/// </summary>
internal sealed class TemplatePostProcessor(int[] before, int[] after) : IPostProcessor
{
    /// <summary>The ids placed before the sequence (the BOS token, typically).</summary>
    public IReadOnlyList<int> Before => before;

    /// <summary>The ids placed after the sequence (an EOS token in some templates).</summary>
    public IReadOnlyList<int> After => after;

    public List<int> AddSpecialTokens(List<int> ids)
    {
        var result = new List<int>(before.Length + ids.Count + after.Length);
        result.AddRange(before);
        result.AddRange(ids);
        result.AddRange(after);
        return result;
    }
}
