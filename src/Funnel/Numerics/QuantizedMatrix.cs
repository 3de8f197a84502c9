using System.Numerics.Tensors;
using System.Runtime.Intrinsics.X86;

namespace Funnel.Numerics;

/// <summary>Which int8 micro-kernel a <see cref="QuantizedMatrix"/> is laid out for.</summary>
internal enum QuantizedKernel
{
    /// <summary>
    /// <c>vpmaddwd</c> on 16-bit lanes (AVX-512BW or AVX2): K in pairs, activations widened to 16 bits.
    /// </summary>
    Pairs,

    /// <summary>
    /// <c>vpdpbusd</c> (AVX-VNNI, 256-bit): K in fours, u8 activations times s8 weights summed four at a
    /// time into each int32 lane, one instruction per 32 multiply-adds with no widening or separate add.
    /// </summary>
    Quads,
}

/// <summary>
/// The weight of a linear layer, W[N×K], quantized once at load time to int8 with one symmetric
/// scale per output feature (per-output-channel: w ≈ scale[j] · q[j, p], q in −127..127), and
/// rearranged into the order <see cref="QuantizedMatMul"/>'s kernel reads it.
/// </summary>
/// <remarks>
/// Layout: panels of <see cref="PanelWidth"/> output features as in <see cref="PackedMatrix"/>, but
/// along K in groups of <see cref="GroupSize"/> (2 for <see cref="QuantizedKernel.Pairs"/>, 4 for
/// <see cref="QuantizedKernel.Quads"/>): for each group of input features a panel holds the 32
/// features' q[j, g·G .. g·G+G−1] side by side, 32·G bytes, which is what one multiply-add instruction
/// consumes per lane. A K that is not a multiple of G and the last panel are zero-padded, so the pad
/// adds nothing.
/// </remarks>
internal sealed class QuantizedMatrix
{
    internal const int PanelWidth = PackedMatrix.PanelWidth;

    /// <summary>The widest K whose int32 sums cannot overflow: K · 255 · 127 &lt; 2³¹.</summary>
    internal const int MaxK = 65_536;

    /// <summary>The kernel this machine runs fastest: <c>vpdpbusd</c> where .NET can emit it.</summary>
    internal static QuantizedKernel PreferredKernel => AvxVnni.IsSupported ? QuantizedKernel.Quads : QuantizedKernel.Pairs;

    /// <summary>Output features (rows of W).</summary>
    public int N { get; }

    /// <summary>Input features (columns of W).</summary>
    public int K { get; }

    internal QuantizedKernel Kernel { get; }

    /// <summary>Input features per group along K: 2 or 4.</summary>
    internal int GroupSize => GroupSizeOf(Kernel);

    private static int GroupSizeOf(QuantizedKernel kernel) => kernel == QuantizedKernel.Quads ? 4 : 2;

    /// <summary>Groups along K, ⌈K/G⌉.</summary>
    internal int KGroups => (K + GroupSize - 1) / GroupSize;

    /// <summary>K rounded up to whole groups: the length of a quantized activation row.</summary>
    internal int PaddedK => KGroups * GroupSize;

    internal int Panels => PackedMatrix.PanelCount(N);

    /// <summary>The packed int8 weights; layout private to <see cref="QuantizedMatMul"/>.</summary>
    internal sbyte[] Data { get; }

    /// <summary>scale[j] per output feature (zero in the pad of the last panel).</summary>
    internal float[] Scales { get; }

    /// <summary>Σ_p q[j, p] per output feature: removes the activations' zero point from the int32 sums.</summary>
    internal int[] ColumnSums { get; }

    private QuantizedMatrix(int n, int k, QuantizedKernel kernel, sbyte[] data, float[] scales, int[] columnSums)
    {
        N = n;
        K = k;
        Kernel = kernel;
        Data = data;
        Scales = scales;
        ColumnSums = columnSums;
    }

    /// <summary>Quantizes W given row-major as [n × k], laid out for this machine's kernel.</summary>
    public static QuantizedMatrix Quantize(ReadOnlySpan<float> w, int n, int k) => Quantize(w, n, k, PreferredKernel);

    /// <summary>Quantizes W for a given kernel (tests run both on a machine that has both).</summary>
    internal static QuantizedMatrix Quantize(ReadOnlySpan<float> w, int n, int k, QuantizedKernel kernel)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(k, MaxK);
        if (w.Length != checked(n * k)) throw new ArgumentException($"expected {n}×{k} = {n * k} values, got {w.Length}", nameof(w));
        int panels = PackedMatrix.PanelCount(n), groupSize = GroupSizeOf(kernel);
        var data = new sbyte[checked(panels * ((k + groupSize - 1) / groupSize) * groupSize * PanelWidth)];
        var scales = new float[panels * PanelWidth];
        var sums = new int[panels * PanelWidth];
        var matrix = new QuantizedMatrix(n, k, kernel, data, scales, sums);
        int groupStride = PanelWidth * groupSize;
        for (int j = 0; j < n; j++)
        {
            ReadOnlySpan<float> row = w.Slice(j * k, k);
            if (!TensorPrimitives.IsFiniteAll(row))
            {
                int bad = 0;
                while (float.IsFinite(row[bad])) bad++;
                throw new ArgumentException($"weight row {j} holds {row[bad]}; only finite weights can be quantized", nameof(w));
            }
            float scale = Math.Abs(TensorPrimitives.MaxMagnitude(row)) / 127f;
            scales[j] = scale;
            float inverse = scale == 0 ? 0 : 1 / scale;
            int sum = 0;
            // Offset(j, p) walked group by group from the row's start, without its divisions per weight.
            int at = matrix.Offset(j, 0);
            for (int p = 0; p < k; at += groupStride)
            {
                for (int t = 0; t < groupSize && p < k; t++, p++)
                {
                    int q = Math.Clamp((int)MathF.Round(row[p] * inverse), -127, 127);
                    data[at + t] = (sbyte)q;
                    sum += q;
                }
            }
            sums[j] = sum;
        }
        return matrix;
    }

    private int Offset(int j, int p) => ((j / PanelWidth * KGroups + p / GroupSize) * PanelWidth + j % PanelWidth) * GroupSize + p % GroupSize;

    /// <summary>q[j, p], the quantized weight (w ≈ <see cref="Scale"/>(j) · q).</summary>
    internal sbyte this[int j, int p] => Data[Offset(j, p)];

    internal float Scale(int j) => Scales[j];
}
