using System.Collections.Concurrent;
using System.Text;

namespace Converter.Formats.Tokenizers;

/// <summary>Options of a tokenizer.json BPE model besides its vocabulary and merges.</summary>
internal sealed record BpeOptions(
    int? UnkId = null,
    bool FuseUnk = false,
    bool ByteFallback = false,
    bool IgnoreMerges = false,
    string? ContinuingSubwordPrefix = null,
    string? EndOfWordSuffix = null);

/// <summary>
/// Byte-pair encoding of one pre-tokenized word: start from one symbol per character (or per UTF-8 byte through
/// "&lt;0xNN&gt;" tokens, or the unknown token), then repeatedly apply the lowest-ranked merge among adjacent
/// pairs, leftmost first on ties, until none applies.
/// </summary>
internal sealed class BpeModel
{
    /// <summary>
    /// Words cached, and the longest word cached. The Hugging Face library caches 10,000 words under 256 bytes;
    /// samples/data/calibration.txt (1.2 MB) has about 26,000 distinct GPT-2 pre-tokenizer words and
    /// eval-heldout.txt adds 9,000 more, so we keep more (at most ~10 MB).
    /// </summary>
    private const int CacheCapacity = 100_000, CacheMaxWordLength = 256;

    private readonly Dictionary<string, int> vocab;
    private readonly Dictionary<int, string> idToToken = [];
    /// <summary>Ids of the single-code-point tokens, the starting symbols (used when no prefix/suffix applies).</summary>
    private readonly Dictionary<int, int> codePointIds = [];
    /// <summary>Keyed by (left id, right id): the merge's rank and the id of the merged token.</summary>
    private readonly Dictionary<long, (int Rank, int Merged)> merges;
    /// <summary>Id of "&lt;0xNN&gt;" for each byte, or -1; null without byte fallback.</summary>
    private readonly int[]? byteIds;
    private readonly BpeOptions options;
    private readonly ConcurrentDictionary<string, int[]> cache = new(StringComparer.Ordinal);
    private int cacheCount;

    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(int Left, int Right, int Merged)> merges, BpeOptions options)
    {
        this.vocab = vocab;
        this.options = options;
        foreach (var (token, id) in vocab)
        {
            idToToken[id] = token;
            if (token.Length > 0 && Rune.DecodeFromUtf16(token, out var rune, out int length) == System.Buffers.OperationStatus.Done
                && length == token.Length)
            {
                codePointIds[rune.Value] = id;
            }
        }
        MaxId = vocab.Count == 0 ? -1 : vocab.Values.Max();

        this.merges = new Dictionary<long, (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
            this.merges[Key(merges[rank].Left, merges[rank].Right)] = (rank, merges[rank].Merged); // a repeated pair keeps its last rank, as in HF

        if (options.ByteFallback)
        {
            byteIds = new int[256];
            for (int b = 0; b < 256; b++)
                byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
        }
    }

    public int MaxId { get; }

    public int? TokenToId(string token) => vocab.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => idToToken.GetValueOrDefault(id);

    public bool TryGetMerge(int left, int right, out int rank, out int merged)
    {
        bool found = merges.TryGetValue(Key(left, right), out var m);
        (rank, merged) = m;
        return found;
    }

    /// <summary>Appends the ids of <paramref name="word"/> to <paramref name="output"/>.</summary>
    public void Tokenize(string word, List<int> output)
    {
        if (options.IgnoreMerges && vocab.TryGetValue(word, out int whole))
        {
            output.Add(whole);
            return;
        }
        if (cache.TryGetValue(word, out var cached))
        {
            output.AddRange(cached);
            return;
        }
        var ids = Merge(InitialSymbols(word));
        if (word.Length < CacheMaxWordLength && Volatile.Read(ref cacheCount) < CacheCapacity && cache.TryAdd(word, ids))
            Interlocked.Increment(ref cacheCount);
        output.AddRange(ids);
    }

    /// <summary>
    /// The symbols BPE starts from: each character's token; failing that its bytes' "&lt;0xNN&gt;" tokens
    /// (byte_fallback, all bytes or none); failing that the unknown token, consecutive ones fused with
    /// fuse_unk; failing that nothing (the character is dropped, as the Hugging Face library does).
    /// </summary>
    internal List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        bool plainCharacters = options.ContinuingSubwordPrefix == null && options.EndOfWordSuffix == null;
        int pendingUnk = -1; // an unknown token not yet emitted, so that the next one can fuse with it
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < word.Length;)
        {
            Rune.DecodeFromUtf16(word.AsSpan(i), out var rune, out int length);
            int id;
            bool known;
            if (plainCharacters)
            {
                known = codePointIds.TryGetValue(rune.Value, out id);
            }
            else
            {
                var s = word.Substring(i, length);
                if (i > 0 && options.ContinuingSubwordPrefix != null)
                    s = options.ContinuingSubwordPrefix + s;
                if (i + length == word.Length && options.EndOfWordSuffix != null)
                    s += options.EndOfWordSuffix;
                known = vocab.TryGetValue(s, out id);
            }
            i += length;

            if (known)
            {
                if (pendingUnk >= 0)
                {
                    symbols.Add(pendingUnk);
                    pendingUnk = -1;
                }
                symbols.Add(id);
                continue;
            }
            if (byteIds != null)
            {
                int n = rune.EncodeToUtf8(utf8);
                bool allBytes = true;
                for (int k = 0; k < n; k++)
                    allBytes &= byteIds[utf8[k]] >= 0;
                if (allBytes)
                {
                    // Like the Hugging Face library, a pending unknown token is not emitted before these bytes.
                    for (int k = 0; k < n; k++)
                        symbols.Add(byteIds[utf8[k]]);
                    continue;
                }
            }
            if (options.UnkId is int unk)
            {
                if (pendingUnk >= 0 && !options.FuseUnk)
                    symbols.Add(pendingUnk);
                pendingUnk = unk;
            }
        }
        if (pendingUnk >= 0)
            symbols.Add(pendingUnk);
        return symbols;
    }

    /// <summary>
    /// Applies merges to <paramref name="symbols"/> in rank order, leftmost first among equal ranks. A priority
    /// queue of candidate pairs over a linked list of symbols makes this O(n log n): a model without
    /// pre-tokenizer (Llama-2 style) hands whole texts over as one word. Stale queue entries (a side already
    /// merged into something else) are recognised and skipped when popped.
    /// </summary>
    internal int[] Merge(List<int> symbols)
    {
        int n = symbols.Count;
        if (n < 2)
            return [.. symbols];
        var ids = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            alive[i] = true;
        }

        // Element: position and the merged id expected there; priority: rank, then position.
        var queue = new PriorityQueue<(int Pos, int Merged), long>(n);
        void Offer(int pos)
        {
            int right = next[pos];
            if (right >= 0 && merges.TryGetValue(Key(ids[pos], ids[right]), out var m))
                queue.Enqueue((pos, m.Merged), ((long)m.Rank << 32) | (uint)pos);
        }
        for (int i = 0; i < n - 1; i++)
            Offer(i);

        while (queue.TryDequeue(out var top, out _))
        {
            int pos = top.Pos, right = next[pos];
            if (!alive[pos] || right < 0)
                continue;
            if (!merges.TryGetValue(Key(ids[pos], ids[right]), out var m) || m.Merged != top.Merged)
                continue;
            ids[pos] = m.Merged;
            alive[right] = false;
            next[pos] = next[right];
            if (next[pos] >= 0)
                prev[next[pos]] = pos;
            if (prev[pos] >= 0)
                Offer(prev[pos]);
            Offer(pos);
        }

        var result = new List<int>();
        for (int i = 0; i >= 0; i = next[i])
            result.Add(ids[i]);
        return [.. result];
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;
}
