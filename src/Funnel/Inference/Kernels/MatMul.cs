namespace Funnel.Inference.Kernels;

/// <summary>What a linear layer does to its output after the bias, fused into the matrix kernel.</summary>
public enum Epilogue
{
    /// <summary>y = x·Wᵀ + b</summary>
    None,
    /// <summary>y = gelu(x·Wᵀ + b), exact erf GELU.</summary>
    Gelu,
    /// <summary>y = x·Wᵀ + b + residual</summary>
    Residual,
}

/// <summary>Dense matrix products for transformer layers. Row-major throughout.</summary>
public static class MatMul
{
    internal static PackedMatrix Pack(ReadOnlySpan<float> w, int n, int k)
    {
        if (w.Length != checked(n * k)) throw new ArgumentException($"expected {n}×{k} = {n * k} values, got {w.Length}", nameof(w));
        return new PackedMatrix(n, k, w.ToArray());
    }

    /// <summary>
    /// y[m×N] = epilogue(x[m×K] · Wᵀ + bias). <paramref name="residual"/> is read only for
    /// <see cref="Epilogue.Residual"/> and may alias <paramref name="y"/>.
    /// </summary>
    public static void Linear(ReadOnlySpan<float> x, int m, PackedMatrix w, ReadOnlySpan<float> bias, Span<float> y,
        Epilogue epilogue = Epilogue.None, ReadOnlySpan<float> residual = default, int maxThreads = 1)
        => LinearReference(x, m, w, bias, y, epilogue, residual);

    /// <summary>The scalar definition that the fast kernel is tested against.</summary>
    internal static void LinearReference(ReadOnlySpan<float> x, int m, PackedMatrix w, ReadOnlySpan<float> bias, Span<float> y,
        Epilogue epilogue, ReadOnlySpan<float> residual)
    {
        int n = w.N, k = w.K;
        float[] wd = w.Data;
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double acc = bias.IsEmpty ? 0 : bias[j];
                for (int p = 0; p < k; p++) acc += x[i * k + p] * wd[j * k + p];
                float v = (float)acc;
                v = epilogue switch
                {
                    Epilogue.Gelu => Activations.GeluReference(v),
                    Epilogue.Residual => v + residual[i * n + j],
                    _ => v,
                };
                y[i * n + j] = v;
            }
        }
    }
}
