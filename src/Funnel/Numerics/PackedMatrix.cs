namespace Funnel.Numerics;

/// <summary>
/// The weight of a linear layer, W[N×K] in PyTorch's (out, in) layout, rearranged once at load
/// time into the order the matrix kernel reads it. Packing is the kernel's business: callers
/// only pack and pass it back.
/// </summary>
/// <remarks>
/// Layout: W is cut into panels of <see cref="PanelWidth"/> output features; a panel holds, for
/// each input feature p, the panel's weights W[j0 .. j0+31, p] side by side, so the micro-kernel
/// reads two contiguous vectors per step along K. The last panel is zero-padded.
/// </remarks>
internal sealed class PackedMatrix
{
    /// <summary>Output features per panel (two 16-float vectors).</summary>
    internal const int PanelWidth = 32;

    /// <summary>Output features (rows of W).</summary>
    public int N { get; }

    /// <summary>Input features (columns of W).</summary>
    public int K { get; }

    /// <summary>The packed data; its layout is private to <see cref="MatMul"/>.</summary>
    internal float[] Data { get; }

    internal int Panels => PanelCount(N);

    internal PackedMatrix(int n, int k, float[] data)
    {
        N = n;
        K = k;
        Data = data;
    }

    /// <summary>Packs W given row-major as [n × k].</summary>
    public static PackedMatrix Pack(ReadOnlySpan<float> w, int n, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        if (w.Length != checked(n * k)) throw new ArgumentException($"expected {n}×{k} = {n * k} values, got {w.Length}", nameof(w));
        var data = new float[checked(PanelCount(n) * PanelWidth * k)];
        PackInto(w, n, k, k, data);
        return new PackedMatrix(n, k, data);
    }

    /// <summary>W[j, p] from the packed data.</summary>
    internal float this[int j, int p] => Data[(j / PanelWidth * K + p) * PanelWidth + j % PanelWidth];

    internal static int PanelCount(int n) => (n + PanelWidth - 1) / PanelWidth;

    /// <summary>Packs rows j of W (each <paramref name="k"/> values, <paramref name="rowStride"/> apart)
    /// into <paramref name="packed"/>, zero-filling the pad of the last panel.</summary>
    internal static void PackInto(ReadOnlySpan<float> w, int n, int k, int rowStride, Span<float> packed)
    {
        int panels = PanelCount(n);
        for (int panel = 0; panel < panels; panel++)
        {
            Span<float> dst = packed.Slice(panel * k * PanelWidth, k * PanelWidth);
            int cols = Math.Min(PanelWidth, n - panel * PanelWidth);
            if (cols < PanelWidth) dst.Clear();
            for (int c = 0; c < cols; c++)
            {
                ReadOnlySpan<float> row = w.Slice((panel * PanelWidth + c) * rowStride, k);
                for (int p = 0; p < k; p++) dst[p * PanelWidth + c] = row[p];
            }
        }
    }
}
