namespace Converter.Trellis.Viterbi;

/// <summary>
/// Searches the trellis for batches of 256-value tiles at one K against one codebook table: the CPU encoder
/// (<see cref="TrellisEncoder"/>) and the CUDA one implement it, and everything that quantizes takes this.
/// </summary>
public interface ITileEncoder
{
    /// <summary>K, 1..8.</summary>
    int Bits { get; }

    /// <summary>Where the search runs, for logs and records (e.g. "cpu x2", "cuda:0").</summary>
    string Device { get; }

    /// <summary>
    /// Encodes <c>targets.Length / 256</c> tiles, each 256 values in trellis-position order (§2.5). Writes the
    /// states (position order; consecutive states form a valid tail-biting sequence, §2.2) and, when
    /// <paramref name="decoded"/> is non-empty, the table value of each state.
    /// </summary>
    void Encode(ReadOnlyMemory<float> targets, Memory<ushort> states, Memory<float> decoded);
}
