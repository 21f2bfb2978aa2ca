using Converter.Compute;

namespace Converter.Conversion.Pipeline;

/// <summary>
/// The outputs of the first <paramref name="total"/> rows of a run that comes in chunks, gathered in row order
/// ((total·tokens, width); 0×0 when none were kept). When the first chunk brings all of them and nothing else (a
/// resident run keeps only those), its matrix is the result as it is: a copy into a fresh matrix first-touched its
/// pages (42 MB per 8B layer at 512 tokens, 168 MB at 2048; session 29's sampling trace).
/// </summary>
public sealed class KeptRows(int total, int tokens)
{
    private Matrix? _rows;

    /// <summary>Takes the first <paramref name="count"/> rows of <paramref name="outputs"/> as kept rows start, start + 1, ….</summary>
    public void Take(int start, Matrix outputs, int count)
    {
        if (count <= 0)
            return;
        if (start == 0 && count == total && outputs.Rows == total * tokens)
        {
            _rows = outputs;
            return;
        }
        _rows ??= new Matrix(total * tokens, outputs.Cols);
        outputs.Data.AsSpan(0, count * tokens * outputs.Cols).CopyTo(_rows.RowRange(start * tokens, count * tokens));
    }

    public Matrix Result => _rows ?? new Matrix(0, 0);
}
