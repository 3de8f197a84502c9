namespace Funnel.Training;

/// <summary>
/// One trainable tensor: its values, its gradient (same layout) and whether AdamW decays it.
/// A tensor read row by row (an embedding table) tracks which rows have a gradient, so clearing and
/// summing the gradient touch only those rows.
/// </summary>
internal sealed class Parameter
{
    private readonly bool[]? _rowTouched;
    private readonly List<int>? _touchedRows;

    public Parameter(string name, int[] shape, float[] value, bool weightDecay, bool sparseRows = false)
    {
        long count = shape.Aggregate(1L, (a, d) => a * d);
        if (value.Length != count) throw new ArgumentException($"{name}: {value.Length} values for shape [{string.Join(", ", shape)}]", nameof(value));
        Name = name;
        Shape = shape;
        Value = value;
        Grad = new float[value.Length];
        WeightDecay = weightDecay;
        if (sparseRows)
        {
            _rowTouched = new bool[shape[0]];
            _touchedRows = [];
        }
    }

    /// <summary>The Hugging Face checkpoint name (without the <c>bert.</c> prefix).</summary>
    public string Name { get; }

    public int[] Shape { get; }

    public float[] Value { get; }

    public float[] Grad { get; }

    public bool WeightDecay { get; }

    public int RowWidth => Shape.Length == 2 ? Shape[1] : Value.Length;

    /// <summary>Rows with a gradient since the last <see cref="ClearGradient"/>, ascending; null for dense tensors.</summary>
    public IReadOnlyList<int>? TouchedRows
    {
        get
        {
            _touchedRows?.Sort();
            return _touchedRows;
        }
    }

    /// <summary>Adds <paramref name="gradient"/> to one row of the gradient (embedding backward).</summary>
    public void AccumulateRow(int row, ReadOnlySpan<float> gradient)
    {
        int w = RowWidth;
        Span<float> g = Grad.AsSpan(row * w, w);
        System.Numerics.Tensors.TensorPrimitives.Add(g, gradient, g);
        if (_rowTouched != null && !_rowTouched[row])
        {
            _rowTouched[row] = true;
            _touchedRows!.Add(row);
        }
    }

    public void ClearGradient()
    {
        if (_touchedRows == null)
        {
            Array.Clear(Grad);
            return;
        }
        int w = RowWidth;
        foreach (int row in _touchedRows)
        {
            Grad.AsSpan(row * w, w).Clear();
            _rowTouched![row] = false;
        }
        _touchedRows.Clear();
    }

    /// <summary>Σ g², over the touched rows only for a sparse tensor (the others are zero): float sums per tensor or row,
    /// as torch's fp32 norms, added in double in a fixed order.</summary>
    public double GradientSquaredNorm()
    {
        if (_touchedRows == null) return System.Numerics.Tensors.TensorPrimitives.SumOfSquares(Grad);
        double sum = 0;
        int w = RowWidth;
        foreach (int row in TouchedRows!) sum += System.Numerics.Tensors.TensorPrimitives.SumOfSquares(Grad.AsSpan(row * w, w));
        return sum;
    }
}
