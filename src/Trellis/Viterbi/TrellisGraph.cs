namespace Converter.Trellis.Viterbi;

/// <summary>
/// The Viterbi graph for K bits (docs/exl3-format.md §2.3): nodes are the 16−K bits two consecutive states share; the
/// state <c>s = (j &lt;&lt; (16−K)) | o</c> leads from node <c>s &gt;&gt; K</c> to node <c>o = s &amp; (N−1)</c>.
/// </summary>
public readonly record struct TrellisGraph(int Bits)
{
    /// <summary>Number of nodes, 2^(16−K).</summary>
    public int Nodes => 1 << (16 - Bits);

    /// <summary>Number of incoming transitions per node, 2^K.</summary>
    public int Fanin => 1 << Bits;

    public int State(int j, int toNode) => (j << (16 - Bits)) | toNode;

    public int FromNode(int state) => state >> Bits;
}
