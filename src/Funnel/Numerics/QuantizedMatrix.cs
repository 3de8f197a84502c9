namespace Funnel.Numerics;

/// <summary>
/// The weight of a linear layer, W[N×K], quantized once at load time to int8 with one symmetric
/// scale per output feature (per-output-channel: w ≈ scale[j] · q[j, p], q in −127..127), and
/// rearranged into the order <see cref="QuantizedMatMul"/> reads it.
/// </summary>
/// <remarks>
/// Layout: panels of <see cref="PanelWidth"/> output features as in <see cref="PackedMatrix"/>, but
/// along K in pairs: for each pair of input features (2t, 2t+1) a panel holds the 32 features'
/// (q[j, 2t], q[j, 2t+1]) side by side, 64 bytes, which the kernel widens to 16-bit and multiplies
/// pairwise (<c>vpmaddwd</c>). An odd K and the last panel are zero-padded, so the pad adds nothing.
/// </remarks>
internal sealed class QuantizedMatrix
{
    internal const int PanelWidth = PackedMatrix.PanelWidth;

    /// <summary>The widest K whose int32 sums cannot overflow: K · 255 · 127 &lt; 2³¹.</summary>
    internal const int MaxK = 65_536;

    /// <summary>Output features (rows of W).</summary>
    public int N { get; }

    /// <summary>Input features (columns of W).</summary>
    public int K { get; }

    /// <summary>Pairs of input features, ⌈K/2⌉.</summary>
    internal int KPairs => (K + 1) / 2;

    internal int Panels => PackedMatrix.PanelCount(N);

    /// <summary>The packed int8 weights; layout private to <see cref="QuantizedMatMul"/>.</summary>
    internal sbyte[] Data { get; }

    /// <summary>scale[j] per output feature (zero in the pad of the last panel).</summary>
    internal float[] Scales { get; }

    /// <summary>Σ_p q[j, p] per output feature: removes the activations' zero point from the int32 sums.</summary>
    internal int[] ColumnSums { get; }

    private QuantizedMatrix(int n, int k, sbyte[] data, float[] scales, int[] columnSums)
    {
        N = n;
        K = k;
        Data = data;
        Scales = scales;
        ColumnSums = columnSums;
    }

    /// <summary>Quantizes W given row-major as [n × k].</summary>
    public static QuantizedMatrix Quantize(ReadOnlySpan<float> w, int n, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(k, MaxK);
        if (w.Length != checked(n * k)) throw new ArgumentException($"expected {n}×{k} = {n * k} values, got {w.Length}", nameof(w));
        int panels = PackedMatrix.PanelCount(n), pairs = (k + 1) / 2;
        var data = new sbyte[checked(panels * pairs * 2 * PanelWidth)];
        var scales = new float[panels * PanelWidth];
        var sums = new int[panels * PanelWidth];
        for (int j = 0; j < n; j++)
        {
            ReadOnlySpan<float> row = w.Slice(j * k, k);
            float maxAbs = 0;
            foreach (float v in row)
            {
                if (!float.IsFinite(v)) throw new ArgumentException($"weight row {j} holds {v}; only finite weights can be quantized", nameof(w));
                maxAbs = Math.Max(maxAbs, Math.Abs(v));
            }
            float scale = maxAbs / 127f;
            scales[j] = scale;
            float inverse = scale == 0 ? 0 : 1 / scale;
            int panel = j / PanelWidth, c = j % PanelWidth, sum = 0;
            for (int p = 0; p < k; p++)
            {
                int q = Math.Clamp((int)MathF.Round(row[p] * inverse), -127, 127);
                data[((panel * pairs + p / 2) * PanelWidth + c) * 2 + p % 2] = (sbyte)q;
                sum += q;
            }
            sums[j] = sum;
        }
        return new QuantizedMatrix(n, k, data, scales, sums);
    }

    /// <summary>q[j, p], the quantized weight (w ≈ <see cref="Scale"/>(j) · q).</summary>
    internal sbyte this[int j, int p] => Data[((j / PanelWidth * KPairs + p / 2) * PanelWidth + j % PanelWidth) * 2 + p % 2];

    internal float Scale(int j) => Scales[j];
}
