namespace Converter.Trellis.Viterbi;

/// <summary>
/// Per-thread scratch of one tile encode: two cost rows of 2^(16−K) floats and the back-pointer table. The
/// back-pointer stores the winning top bits j (one byte, since 2^K ≤ 256) rather than the from-node: the
/// from-node follows from j and the to-node, and a byte table is half the memory traffic of exllamav3's uint16.
/// </summary>
public sealed class ViterbiWorkspace
{
    public ViterbiWorkspace(int bits)
    {
        Graph = new TrellisGraph(bits);
        int nodes = Graph.Nodes;
        // 16 floats of slack: the wide encoder's 8-float prior loads may run past the last node.
        Previous = new float[nodes + 16];
        Current = new float[nodes + 16];
        Zero = new float[nodes + 16];
        BackPointers = new byte[Trellis.Tiles.TileLayout.Length * nodes];
        ScratchRow = new byte[nodes];
    }

    public TrellisGraph Graph { get; }
    internal float[] Previous;
    internal float[] Current;
    internal readonly float[] Zero;
    internal readonly byte[] BackPointers;
    internal readonly byte[] ScratchRow;

    internal void Swap() => (Previous, Current) = (Current, Previous);
}
