using System.Runtime.Intrinsics;

namespace Funnel.Numerics;

/// <summary>Row-wise normalisations.</summary>
internal static class Normalization
{
    /// <summary>In place, for each of <paramref name="rows"/> rows of width gamma.Length:
    /// x = (x − mean) / √(var + eps) · gamma + beta, with the biased variance as torch.nn.LayerNorm.
    /// Rows are shared among up to <paramref name="maxThreads"/> threads.</summary>
    public static unsafe void LayerNorm(Span<float> x, int rows, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps, int maxThreads = 1)
    {
        int d = gamma.Length;
        if (beta.Length != d) throw new ArgumentException($"beta holds {beta.Length} values, gamma {d}", nameof(beta));
        if (x.Length < (long)rows * d) throw new ArgumentException($"x holds {x.Length} values, expected {rows}×{d}", nameof(x));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxThreads);
        if (rows == 0 || d == 0) return;
        // Below a few thousand values a row block is cheaper than waking a thread.
        int chunk = WorkSplit.ChunkSize(rows, maxThreads, Math.Max(1, 4096 / d), rows);
        fixed (float* px = x, pg = gamma, pb = beta)
            WorkSplit.Run(new LayerNormJob(px, rows, d, pg, pb, eps, chunk), (rows + chunk - 1) / chunk, maxThreads);
    }

    private readonly unsafe struct LayerNormJob(float* x, int rows, int d, float* gamma, float* beta, float eps, int chunk) : IWorkItems
    {
        public void Run(int item)
        {
            var g = new ReadOnlySpan<float>(gamma, d);
            var b = new ReadOnlySpan<float>(beta, d);
            for (int r = item * chunk, end = Math.Min(rows, r + chunk); r < end; r++) LayerNormRow(new Span<float>(x + (nint)r * d, d), g, b, eps);
        }
    }

    /// <summary>Two passes (mean, then the centred sum of squares, which avoids E[x²]−E[x]²
    /// cancellation) and a third that writes the result.</summary>
    private static void LayerNormRow(Span<float> row, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps)
    {
        RowStatistics(row, eps, out float mean, out float inv);
        int d = row.Length, i = 0;
        ref float x0 = ref row[0];
        if (Vector512.IsHardwareAccelerated && d >= Vector512<float>.Count)
        {
            var m = Vector512.Create(mean);
            var s = Vector512.Create(inv);
            ref float g0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(gamma);
            ref float b0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(beta);
            for (; i <= d - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var v = (Vector512.LoadUnsafe(ref x0, (nuint)i) - m) * s;
                Vector512.FusedMultiplyAdd(v, Vector512.LoadUnsafe(ref g0, (nuint)i), Vector512.LoadUnsafe(ref b0, (nuint)i))
                    .StoreUnsafe(ref x0, (nuint)i);
            }
        }
        for (; i < d; i++) row[i] = (row[i] - mean) * inv * gamma[i] + beta[i];
    }

    /// <summary>A row's mean and 1/√(biased variance + eps), exactly as <see cref="LayerNorm"/> computes them
    /// (training saves them for the backward pass).</summary>
    internal static void RowStatistics(ReadOnlySpan<float> row, float eps, out float mean, out float inv)
    {
        int d = row.Length, i = 0;
        ref float x0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(row);
        float sum = 0;
        if (Vector512.IsHardwareAccelerated && d >= Vector512<float>.Count)
        {
            var acc = Vector512<float>.Zero;
            for (; i <= d - Vector512<float>.Count; i += Vector512<float>.Count) acc += Vector512.LoadUnsafe(ref x0, (nuint)i);
            sum = Vector512.Sum(acc);
        }
        for (; i < d; i++) sum += row[i];
        mean = sum / d;

        float sq = 0;
        i = 0;
        if (Vector512.IsHardwareAccelerated && d >= Vector512<float>.Count)
        {
            var acc = Vector512<float>.Zero;
            var m = Vector512.Create(mean);
            for (; i <= d - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var c = Vector512.LoadUnsafe(ref x0, (nuint)i) - m;
                acc = Vector512.FusedMultiplyAdd(c, c, acc);
            }
            sq = Vector512.Sum(acc);
        }
        for (; i < d; i++) sq += (row[i] - mean) * (row[i] - mean);
        inv = 1f / MathF.Sqrt(sq / d + eps);
    }

    internal static void LayerNormReference(Span<float> x, int rows, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps)
    {
        int d = gamma.Length;
        for (int r = 0; r < rows; r++)
        {
            Span<float> row = x.Slice(r * d, d);
            double mean = 0;
            for (int i = 0; i < d; i++) mean += row[i];
            mean /= d;
            double var = 0;
            for (int i = 0; i < d; i++) var += (row[i] - mean) * (row[i] - mean);
            var /= d;
            double inv = 1.0 / Math.Sqrt(var + eps);
            for (int i = 0; i < d; i++) row[i] = (float)((row[i] - mean) * inv * gamma[i] + beta[i]);
        }
    }
}
