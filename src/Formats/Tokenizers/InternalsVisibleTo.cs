using System.Runtime.CompilerServices;

// The tokenizer tests check the BPE merge loop against a plain reference implementation, which needs the model's
// internals. (The attribute allows duplicates, so other parts of the assembly may declare it too.)
[assembly: InternalsVisibleTo("Converter.Formats.Tests")]
