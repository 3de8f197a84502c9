using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Funnel.Numerics;

namespace Funnel.Training;

/// <summary>
/// torch.nn.LayerNorm over the last dimension, forward and backward. The forward computes each row's
/// statistics exactly as the inference kernel does (<see cref="Normalization.RowStatistics"/>), so with
/// dropout off a training forward gives the inference encoder's outputs bit for bit; it saves the
/// normalised rows x̂ and 1/σ for the backward pass.
/// </summary>
internal sealed class LayerNormLayer(Parameter gamma, Parameter beta, float eps)
{
    public Parameter Gamma { get; } = gamma;

    public Parameter Beta { get; } = beta;

    private int Width => Gamma.Value.Length;

    /// <summary>x̂ = (s − mean)/σ and 1/σ per row of <paramref name="s"/> [rows × d]; y = x̂·γ + β.
    /// <paramref name="y"/> may alias <paramref name="s"/>.</summary>
    public unsafe void Forward(ReadOnlySpan<float> s, int rows, Span<float> xhat, Span<float> inv, Span<float> y, int threads)
    {
        int d = Width;
        fixed (float* ps = s, px = xhat, pi = inv, py = y)
        {
            var job = new ForwardJob(ps, px, pi, py, rows, d, eps, this);
            WorkSplit.Run(job, Items(rows), threads);
        }
    }

    private readonly unsafe struct ForwardJob(float* s, float* xhat, float* inv, float* y, int rows, int d, float eps, LayerNormLayer layer) : IWorkItems
    {
        public void Run(int item)
        {
            int chunk = RowsPerItem(rows);
            for (int r = item * chunk, end = Math.Min(rows, r + chunk); r < end; r++)
            {
                var row = new ReadOnlySpan<float>(s + (nint)r * d, d);
                Normalization.RowStatistics(row, eps, out float mean, out float scale);
                inv[r] = scale;
                Span<float> xr = new(xhat + (nint)r * d, d);
                for (int i = 0; i < d; i++) xr[i] = (row[i] - mean) * scale;
                layer.OutputRow(xr, new Span<float>(y + (nint)r * d, d));
            }
        }
    }

    /// <summary>y = x̂·γ + β for rows already normalised (recomputing a saved layer's output).</summary>
    public unsafe void Output(ReadOnlySpan<float> xhat, int rows, Span<float> y, int threads)
    {
        int d = Width;
        fixed (float* px = xhat, py = y)
            WorkSplit.Run(new OutputJob(px, py, rows, d, this), Items(rows), threads);
    }

    private readonly unsafe struct OutputJob(float* xhat, float* y, int rows, int d, LayerNormLayer layer) : IWorkItems
    {
        public void Run(int item)
        {
            int chunk = RowsPerItem(rows);
            for (int r = item * chunk, end = Math.Min(rows, r + chunk); r < end; r++)
                layer.OutputRow(new ReadOnlySpan<float>(xhat + (nint)r * d, d), new Span<float>(y + (nint)r * d, d));
        }
    }

    /// <summary>The same arithmetic as the inference kernel's last pass: fused γ·x̂ + β in vectors, unfused in the tail.</summary>
    private void OutputRow(ReadOnlySpan<float> xhat, Span<float> y)
    {
        ReadOnlySpan<float> g = Gamma.Value, b = Beta.Value;
        int d = xhat.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= d - Vector512<float>.Count; i += Vector512<float>.Count)
                Vector512.FusedMultiplyAdd(Vector512.Create(xhat[i..]), Vector512.Create(g[i..]), Vector512.Create(b[i..])).CopyTo(y[i..]);
        }
        for (; i < d; i++) y[i] = xhat[i] * g[i] + b[i];
    }

    /// <summary>
    /// dx from dy through the normalisation: dx = (g − mean(g) − x̂·mean(g·x̂))/σ with g = dy·γ; adds
    /// Σ dy·x̂ to γ's gradient and Σ dy to β's (columns summed in row order).
    /// </summary>
    public unsafe void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> xhat, ReadOnlySpan<float> inv, int rows, Span<float> dx, int threads)
    {
        int d = Width;
        fixed (float* pdy = dy, px = xhat, pi = inv, pdx = dx)
        {
            WorkSplit.Run(new ParameterGradientJob(pdy, px, rows, d, this), (d + ColumnSlice - 1) / ColumnSlice, rows * d < 1 << 16 ? 1 : threads);
            WorkSplit.Run(new InputGradientJob(pdy, px, pi, pdx, rows, d, Gamma.Value), Items(rows), threads);
        }
    }

    private const int ColumnSlice = 64;

    private readonly unsafe struct ParameterGradientJob(float* dy, float* xhat, int rows, int d, LayerNormLayer layer) : IWorkItems
    {
        public void Run(int item)
        {
            int col = item * ColumnSlice, cols = Math.Min(ColumnSlice, d - col);
            Span<float> dGamma = layer.Gamma.Grad.AsSpan(col, cols), dBeta = layer.Beta.Grad.AsSpan(col, cols);
            for (int r = 0; r < rows; r++)
            {
                var g = new ReadOnlySpan<float>(dy + (nint)r * d + col, cols);
                TensorPrimitives.FusedMultiplyAdd(g, new ReadOnlySpan<float>(xhat + (nint)r * d + col, cols), dGamma, dGamma);
                TensorPrimitives.Add(dBeta, g, dBeta);
            }
        }
    }

    private readonly unsafe struct InputGradientJob(float* dy, float* xhat, float* inv, float* dx, int rows, int d, float[] gamma) : IWorkItems
    {
        public void Run(int item)
        {
            int chunk = RowsPerItem(rows);
            for (int r = item * chunk, end = Math.Min(rows, r + chunk); r < end; r++)
            {
                var x = new ReadOnlySpan<float>(xhat + (nint)r * d, d);
                var g = new Span<float>(dx + (nint)r * d, d);
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(dy + (nint)r * d, d), gamma, g);
                float meanG = TensorPrimitives.Sum(g) / d, meanGx = TensorPrimitives.Dot(g, x) / d;
                // dx = inv·(g − meanG − x̂·meanGx), as one multiply-add and one scale.
                TensorPrimitives.MultiplyAdd(x, -meanGx, g, g);
                TensorPrimitives.Add(g, -meanG, g);
                TensorPrimitives.Multiply(g, inv[r], g);
            }
        }
    }

    /// <summary>Rows per work item: enough values that waking a thread pays.</summary>
    private static int RowsPerItem(int rows) => Math.Max(16, (rows + 63) / 64);

    private static int Items(int rows) => (rows + RowsPerItem(rows) - 1) / RowsPerItem(rows);
}
