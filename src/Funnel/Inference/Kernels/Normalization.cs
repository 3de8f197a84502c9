namespace Funnel.Inference.Kernels;

/// <summary>Row-wise normalisations.</summary>
public static class Normalization
{
    /// <summary>In place, for each of <paramref name="rows"/> rows of width gamma.Length:
    /// x = (x − mean) / √(var + eps) · gamma + beta, with the biased variance as torch.nn.LayerNorm.</summary>
    public static void LayerNorm(Span<float> x, int rows, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps)
        => LayerNormReference(x, rows, gamma, beta, eps);

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
