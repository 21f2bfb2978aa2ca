namespace Converter.Cuda.Blas;

/// <summary>
/// Which cached weights make room for a new one (<see cref="CudaDenseAlgebra"/>'s weight cache, most recently used
/// first). Past the entry count the least recently used go, as in any LRU: a finished module's weights. Past the byte
/// cap of a lean plan the most recently used go instead: a capture passes the same weights in the same order for every
/// chunk, and when they do not all fit, LRU evicts each just before its next use and re-uploads all of them every chunk
/// (a 70B layer's down_proj stage, 5.9 GB of originals and reconstructions against a 4.2 GB cap: 8.9 s of its 14.2 s
/// capture in uploads, session 26), where evicting the newest keeps the oldest resident and misses only the overflow.
/// </summary>
public static class WeightCachePolicy
{
    /// <summary>
    /// Indices (into <paramref name="bytesMostRecentFirst"/>) of the entries to drop before a weight of
    /// <paramref name="incoming"/> bytes is admitted under at most <paramref name="maxCount"/> entries and
    /// <paramref name="maxBytes"/> bytes; <paramref name="newestFirstOverBytes"/> drops the most recently used for
    /// the byte cap (a lean plan's cyclic passes), else the least. Everything goes when the weight alone exceeds the cap.
    /// </summary>
    public static IReadOnlyList<int> Evictions(IReadOnlyList<long> bytesMostRecentFirst, long incoming, int maxCount, long maxBytes, bool newestFirstOverBytes)
    {
        var kept = Enumerable.Range(0, bytesMostRecentFirst.Count).ToList();
        var dropped = new List<int>();
        long held = bytesMostRecentFirst.Sum();
        void Drop(int position)
        {
            held -= bytesMostRecentFirst[kept[position]];
            dropped.Add(kept[position]);
            kept.RemoveAt(position);
        }
        while (kept.Count > 0 && kept.Count >= maxCount)
            Drop(kept.Count - 1);
        while (kept.Count > 0 && held + incoming > maxBytes)
        {
            if (!newestFirstOverBytes)
            {
                Drop(kept.Count - 1);
                continue;
            }
            // The newest entry whose room alone is enough, else the newest: with weights of unequal sizes a big one
            // dropped for a small one's room would be uploaded again within the chunk (43% of LRU's uploads in the
            // test's 70B stage, 50% when always the newest).
            long need = held + incoming - maxBytes;
            int fits = kept.FindIndex(i => bytesMostRecentFirst[i] >= need);
            Drop(fits >= 0 ? fits : 0);
        }
        return dropped;
    }
}
