namespace Converter.Trellis.Codebooks;

/// <summary>The three procedural codebooks of EXL3 (docs/exl3-format.md §1). The numeric value is the kernel's codebook id.</summary>
public enum CodebookKind
{
    /// <summary>QTIP's LCG followed by the two-halves step (§1.2); stored tensors carry no marker.</summary>
    ThreeInst = 0,

    /// <summary>Multiplicative congruential generator followed by the two-halves step (§1.3); marker tensor <c>.mcg</c>.</summary>
    Mcg = 1,

    /// <summary>Multiply, byte sum, one fp16 FMA (§1.4); marker tensor <c>.mul1</c>.</summary>
    Mul1 = 2,
}
