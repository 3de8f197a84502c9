using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Funnel.Numerics;

/// <summary>
/// Dynamically quantized linear layers: y = epilogue(x · Wᵀ + bias) with W int8 per output channel
/// (<see cref="QuantizedMatrix"/>) and x quantized per token (row) on every call to u8 with its own
/// scale and zero point: x ≈ sₓ · (qₓ − z). Products are summed exactly in int32 and turned back into
/// fp32 once per output, sₓ·s_w·(Σ qₓ·q_w − z·Σ q_w), before the fp32 epilogue (bias, GELU, residual).
/// </summary>
/// <remarks>
/// Two kernels, chosen by the matrix's layout (<see cref="QuantizedMatrix.PreferredKernel"/>):
/// <list type="bullet">
/// <item><c>vpdpbusd</c> through <see cref="AvxVnni"/> (VEX, 256-bit): u8 activations × s8 weights, four
/// products per int32 lane, 32 multiply-adds per instruction. .NET 10 has no 512-bit VNNI class, but on
/// Zen 5 the 256-bit form still runs ~1.25× the 512-bit <c>vpmaddwd</c> kernel (measured 400 against
/// 320 GOP/s on one core), since it needs no widening and no separate add.</item>
/// <item>Without AVX-VNNI, both operands widened to 16 bits and multiplied in pairs with <c>vpmaddwd</c>
/// (AVX-512BW or AVX2) plus a <c>vpaddd</c>: 32 exact multiply-adds per pair of instructions.
/// (<c>vpmaddubsw</c> would saturate its 16-bit pair sums at u8×s8 ranges, so it is not exact.)</item>
/// </list>
/// Both sum exactly, so their outputs are identical to each other and to the scalar twin.
/// </remarks>
internal static class QuantizedMatMul
{
    /// <summary>Whether a SIMD kernel runs here for <paramref name="kernel"/> (else the scalar twin, with the same results, slowly).</summary>
    public static bool IsAccelerated(QuantizedKernel kernel) =>
        kernel == QuantizedKernel.Quads ? AvxVnni.IsSupported : Avx512BW.IsSupported || Avx2.IsSupported;

    /// <summary>
    /// Rows per micro-tile: 8 for the AVX-512 pairs kernel (16 zmm accumulators); 6 for the AVX2 pairs
    /// kernel and for VNNI, whose VEX encoding reaches only 16 ymm registers (12 accumulators).
    /// </summary>
    internal static int TileRows(QuantizedKernel kernel) => kernel == QuantizedKernel.Pairs && Avx512BW.IsSupported ? 8 : 6;

    private const int MaxTileRows = 8;

    /// <summary>Bytes of quantized activations kept hot in L2 while every weight panel passes them.</summary>
    private const int RowBlockBytes = 128 * 1024;

    /// <summary>
    /// y[m×N] = epilogue(x[m×K] · Wᵀ + bias), as <see cref="MatMul.Linear"/> but with int8 weights and
    /// per-row u8 activations. <paramref name="residual"/> is read only for <see cref="Epilogue.Residual"/>
    /// and may alias <paramref name="y"/>.
    /// </summary>
    public static unsafe void Linear(ReadOnlySpan<float> x, int m, QuantizedMatrix w, ReadOnlySpan<float> bias, Span<float> y,
        Epilogue epilogue = Epilogue.None, ReadOnlySpan<float> residual = default, int maxThreads = 1)
    {
        int n = w.N, k = w.K;
        MatMul.ValidateLinear(x.Length, m, n, k, bias.Length, y.Length, epilogue, residual.Length, maxThreads);
        if (m == 0) return;
        if (!IsAccelerated(w.Kernel))
        {
            LinearReference(x, m, w, bias, y, epilogue, residual);
            return;
        }
        // VNNI reads u8 activations as bytes; the pairs kernel reads them widened to 16 bits.
        int elementBytes = w.Kernel == QuantizedKernel.Quads ? sizeof(byte) : sizeof(short);
        int lda = w.PaddedK, rowBytes = lda * elementBytes;
        byte[] qx = ArrayPool<byte>.Shared.Rent(m * rowBytes);
        float[] scales = ArrayPool<float>.Shared.Rent(m);
        int[] zeroPoints = ArrayPool<int>.Shared.Rent(m);
        try
        {
            fixed (float* px = x, py = y, pb = bias, pr = residual, ps = scales)
            fixed (byte* pq = qx)
            fixed (sbyte* pw = w.Data)
            fixed (float* pws = w.Scales)
            fixed (int* pz = zeroPoints, pcs = w.ColumnSums)
            {
                var a = new QuantizedRows(pq, rowBytes, ps, pz);
                int quantizeChunk = WorkSplit.ChunkSize(m, maxThreads, 1, 64);
                WorkSplit.Run(new QuantizeJob(px, k, m, a, lda, w.Kernel, quantizeChunk), (m + quantizeChunk - 1) / quantizeChunk, maxThreads);

                var output = new GemmOutput(py, n, pb, epilogue == Epilogue.Residual ? pr : null, epilogue);
                var b = new QuantizedWeights(pw, w.Kernel, w.KGroups, w.GroupSize, pws, pcs, n);
                int tileRows = TileRows(w.Kernel), blockRows = BlockRows(rowBytes, tileRows);
                var split = GemmSplit.For(m, w.Panels, maxThreads, tileRows, blockRows);
                WorkSplit.Run(new LinearJob(a, b, output, split, blockRows), split.Items, maxThreads);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(qx);
            ArrayPool<float>.Shared.Return(scales);
            ArrayPool<int>.Shared.Return(zeroPoints);
        }
    }

    private static int BlockRows(int rowBytes, int tileRows) => Math.Clamp(RowBlockBytes / rowBytes / tileRows * tileRows, tileRows, 32 * tileRows);

    /// <summary>Per-row activations after quantization: qₓ (u8 values, as bytes or 16-bit lanes, rows <paramref name="rowBytes"/> apart), sₓ and z.</summary>
    private readonly unsafe struct QuantizedRows(byte* q, int rowBytes, float* scales, int* zeroPoints)
    {
        public byte* Row(int i) => q + (nint)i * rowBytes;
        public int RowBytes => rowBytes;
        public float* Scales => scales;
        public int* ZeroPoints => zeroPoints;
    }

    private readonly unsafe struct QuantizedWeights(sbyte* q, QuantizedKernel kernel, int kGroups, int groupSize, float* scales, int* columnSums, int n)
    {
        public sbyte* Q => q;
        public QuantizedKernel Kernel => kernel;
        public int KGroups => kGroups;
        public int PanelBytes => kGroups * groupSize * PackedMatrix.PanelWidth;
        public float* Scales => scales;
        public int* ColumnSums => columnSums;
        public int N => n;
    }

    private readonly unsafe struct QuantizeJob(float* x, int k, int m, QuantizedRows a, int lda, QuantizedKernel kernel, int chunk) : IWorkItems
    {
        public void Run(int item)
        {
            for (int i = item * chunk, end = Math.Min(m, (item + 1) * chunk); i < end; i++)
            {
                var row = new ReadOnlySpan<float>(x + (nint)i * k, k);
                (a.Scales[i], a.ZeroPoints[i]) = kernel == QuantizedKernel.Quads
                    ? QuantizeRow(row, new Span<byte>(a.Row(i), lda))
                    : QuantizeRow(row, new Span<short>(a.Row(i), lda));
            }
        }
    }

    private readonly unsafe struct LinearJob(QuantizedRows a, QuantizedWeights b, GemmOutput output, GemmSplit split, int blockRows)
        : IWorkItems
    {
        public void Run(int item)
        {
            var (rows, panels) = split.Item(item);
            Multiply(a, rows.Start.Value, rows.End.Value, b, panels.Start.Value, panels.End.Value, blockRows, output);
        }
    }

    /// <summary>
    /// The u8 range of one row: min and max widened to include 0 (so 0 is exact, as padding and ReLU-like
    /// zeros need), 255 steps between them. A row of zeros gets scale 1 and zero point 0.
    /// </summary>
    internal static (float Scale, int ZeroPoint) Range(float min, float max)
    {
        min = Math.Min(min, 0);
        max = Math.Max(max, 0);
        float scale = (max - min) / 255f;
        if (!(scale > 0)) return (scale == 0 ? 1 : scale, 0);
        return (scale, Math.Clamp((int)MathF.Round(-min / scale), 0, 255));
    }

    /// <summary>
    /// Quantizes one row: q = clamp(round(x/s) + z, 0, 255), into bytes (VNNI) or 16-bit lanes (pairs);
    /// q's pad past K is zeroed.
    /// </summary>
    internal static (float Scale, int ZeroPoint) QuantizeRow<T>(ReadOnlySpan<float> x, Span<T> q) where T : unmanaged, IBinaryInteger<T>
    {
        if (!Vector512.IsHardwareAccelerated || !Avx512F.IsSupported) return QuantizeRowReference(x, q);
        var (min, max) = MinMax(x);
        var (scale, zeroPoint) = Range(min, max);
        float inverse = 1 / scale;
        Vector512<float> inv = Vector512.Create(inverse);
        Vector512<int> zp = Vector512.Create(zeroPoint), lo = Vector512<int>.Zero, hi = Vector512.Create(255);
        int p = 0;
        for (; p + 16 <= x.Length; p += 16)
        {
            // Rounds to nearest even, as MathF.Round in the scalar twin.
            Vector512<int> v = Vector512.Min(Vector512.Max(Avx512F.ConvertToVector512Int32(Vector512.Create(x.Slice(p, 16)) * inv) + zp, lo), hi);
            if (typeof(T) == typeof(byte)) Avx512F.ConvertToVector128Byte(v).CopyTo(MemoryMarshal.Cast<T, byte>(q.Slice(p, 16)));
            else Avx512F.ConvertToVector256Int16(v).CopyTo(MemoryMarshal.Cast<T, short>(q.Slice(p, 16)));
        }
        for (; p < x.Length; p++) q[p] = QuantizeValue<T>(x[p], inverse, zeroPoint);
        q[x.Length..].Clear();
        return (scale, zeroPoint);
    }

    /// <summary>Both ends of a row in one pass, NaN when it holds one, as the scalar twin finds them. TensorPrimitives'
    /// Min and Max take a pass each and order −0 below +0, which <see cref="Range"/> has no use for.</summary>
    private static (float Min, float Max) MinMax(ReadOnlySpan<float> x)
    {
        Vector512<float> lo = Vector512.Create(float.PositiveInfinity), hi = Vector512.Create(float.NegativeInfinity), nan = Vector512<float>.Zero;
        int p = 0;
        for (; p + 16 <= x.Length; p += 16)
        {
            Vector512<float> v = Vector512.Create(x.Slice(p, 16));
            lo = Vector512.MinNative(lo, v);
            hi = Vector512.MaxNative(hi, v);
            nan |= Vector512.IsNaN(v);
        }
        // Halving reductions: indexing a vector's lanes in a loop goes through memory.
        Vector256<float> lo8 = Vector256.MinNative(lo.GetLower(), lo.GetUpper()), hi8 = Vector256.MaxNative(hi.GetLower(), hi.GetUpper());
        Vector128<float> lo4 = Vector128.MinNative(lo8.GetLower(), lo8.GetUpper()), hi4 = Vector128.MaxNative(hi8.GetLower(), hi8.GetUpper());
        float min = Math.Min(Math.Min(lo4[0], lo4[1]), Math.Min(lo4[2], lo4[3]));
        float max = Math.Max(Math.Max(hi4[0], hi4[1]), Math.Max(hi4[2], hi4[3]));
        bool anyNaN = nan != Vector512<float>.Zero;
        for (; p < x.Length; p++)
        {
            anyNaN |= float.IsNaN(x[p]);
            min = Math.Min(min, x[p]);
            max = Math.Max(max, x[p]);
        }
        return anyNaN ? (float.NaN, float.NaN) : (min, max);
    }

    /// <summary>The scalar twin of <see cref="QuantizeRow{T}"/>.</summary>
    internal static (float Scale, int ZeroPoint) QuantizeRowReference<T>(ReadOnlySpan<float> x, Span<T> q) where T : unmanaged, IBinaryInteger<T>
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float v in x)
        {
            min = float.IsNaN(v) ? v : Math.Min(min, v);
            max = float.IsNaN(v) ? v : Math.Max(max, v);
        }
        var (scale, zeroPoint) = Range(min, max);
        float inverse = 1 / scale;
        for (int p = 0; p < x.Length; p++) q[p] = QuantizeValue<T>(x[p], inverse, zeroPoint);
        q[x.Length..].Clear();
        return (scale, zeroPoint);
    }

    private static T QuantizeValue<T>(float x, float inverse, int zeroPoint) where T : IBinaryInteger<T> =>
        T.CreateTruncating(Math.Clamp((int)MathF.Round(x * inverse) + zeroPoint, 0, 255));

    /// <summary>The dequantized, epilogued sum the kernel writes for one output, from its exact int32 sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dequantize(int sum, int zeroPoint, int columnSum, float rowScale, float columnScale) =>
        (float)(sum - zeroPoint * columnSum) * (rowScale * columnScale);

    /// <summary>
    /// The scalar twin: the same quantization and the same integer sums, one product at a time, then the
    /// same fp32 dequantization and epilogue, so it agrees with <see cref="Linear"/> bit for bit.
    /// </summary>
    internal static void LinearReference(ReadOnlySpan<float> x, int m, QuantizedMatrix w, ReadOnlySpan<float> bias, Span<float> y,
        Epilogue epilogue, ReadOnlySpan<float> residual)
    {
        int n = w.N, k = w.K;
        var q = new short[w.PaddedK];
        for (int i = 0; i < m; i++)
        {
            var (scale, zeroPoint) = QuantizeRowReference<short>(x.Slice(i * k, k), q);
            for (int j = 0; j < n; j++)
            {
                int sum = 0;
                for (int p = 0; p < k; p++) sum += q[p] * w[j, p];
                float v = Dequantize(sum, zeroPoint, w.ColumnSums[j], scale, w.Scale(j));
                if (!bias.IsEmpty) v += bias[j];
                v = epilogue switch
                {
                    Epilogue.Gelu => VectorMath.Gelu(v),
                    Epilogue.Residual => v + residual[i * n + j],
                    _ => v,
                };
                y[i * n + j] = v;
            }
        }
    }

    /// <summary>
    /// Rows [rowBegin, rowEnd) × panels [panelBegin, panelEnd), single-threaded: blocks of rows sized for
    /// L2, each swept against the panels; a tile of int32 sums (up to 8 rows × 32 columns) per
    /// micro-kernel call, dequantized and epilogued on its way out.
    /// </summary>
    [SkipLocalsInit]
    private static unsafe void Multiply(in QuantizedRows a, int rowBegin, int rowEnd, in QuantizedWeights b, int panelBegin, int panelEnd,
        int blockRows, in GemmOutput output)
    {
        int tileRows = TileRows(b.Kernel);
        int* sums = stackalloc int[MaxTileRows * PackedMatrix.PanelWidth];
        float* tile = stackalloc float[PackedMatrix.PanelWidth];
        for (int i0 = rowBegin; i0 < rowEnd; i0 += blockRows)
        {
            int i1 = Math.Min(i0 + blockRows, rowEnd);
            for (int panel = panelBegin; panel < panelEnd; panel++)
            {
                sbyte* bp = b.Q + (nint)panel * b.PanelBytes;
                int col = panel * PackedMatrix.PanelWidth, cols = Math.Min(PackedMatrix.PanelWidth, b.N - col);
                float* ws = b.Scales + col;
                int* cs = b.ColumnSums + col;
                for (int i = i0; i < i1; i += tileRows)
                {
                    int rows = Math.Min(tileRows, i1 - i);
                    if (b.Kernel == QuantizedKernel.Quads) VnniKernel6x32(a.Row(i), a.RowBytes, rows, b.KGroups, bp, sums);
                    else if (Avx512BW.IsSupported) Kernel8x32(a.Row(i), a.RowBytes, rows, b.KGroups, bp, sums);
                    else Kernel6x32(a.Row(i), a.RowBytes, rows, b.KGroups, bp, sums);
                    for (int r = 0; r < rows; r++)
                    {
                        DequantizeTileRow(sums + r * PackedMatrix.PanelWidth, a.ZeroPoints[i + r], a.Scales[i + r], cs, ws, tile);
                        output.Store(i + r, col, tile, cols);
                    }
                }
            }
        }
    }

    /// <summary>32 sums of one row to fp32: (sum − z·Σq_w) · (sₓ·s_w), lane for lane as <see cref="Dequantize"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void DequantizeTileRow(int* sums, int zeroPoint, float rowScale, int* columnSums, float* columnScales, float* tile)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<int> zp = Vector512.Create(zeroPoint);
            Vector512<float> scale = Vector512.Create(rowScale);
            for (int c = 0; c < PackedMatrix.PanelWidth; c += 16)
                (Vector512.ConvertToSingle(Vector512.Load(sums + c) - zp * Vector512.Load(columnSums + c)) * (scale * Vector512.Load(columnScales + c))).Store(tile + c);
            return;
        }
        Vector256<int> zp8 = Vector256.Create(zeroPoint);
        Vector256<float> scale8 = Vector256.Create(rowScale);
        for (int c = 0; c < PackedMatrix.PanelWidth; c += 8)
            (Vector256.ConvertToSingle(Vector256.Load(sums + c) - zp8 * Vector256.Load(columnSums + c)) * (scale8 * Vector256.Load(columnScales + c))).Store(tile + c);
    }

    /// <summary>
    /// Row <paramref name="r"/> of a tile's activations read as int32 groups along K (a pair of 16-bit lanes
    /// or a quad of bytes, what one multiply-add broadcasts); a row past <paramref name="rows"/> aliases row 0
    /// and is computed but not stored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int* RowGroups(byte* a, int rowBytes, int r, int rows) => (int*)(r < rows ? a + (nint)r * rowBytes : a);

    /// <summary>
    /// rows (≤ 8) × 32 columns of exact int32 sums over all K pairs into <paramref name="c"/> (row stride 32).
    /// Missing rows alias the first and are not stored, as in the fp32 kernel.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel8x32(byte* a, int rowBytes, int rows, int kPairs, sbyte* b, int* c)
    {
        int* a0 = RowGroups(a, rowBytes, 0, rows);
        int* a1 = RowGroups(a, rowBytes, 1, rows);
        int* a2 = RowGroups(a, rowBytes, 2, rows);
        int* a3 = RowGroups(a, rowBytes, 3, rows);
        int* a4 = RowGroups(a, rowBytes, 4, rows);
        int* a5 = RowGroups(a, rowBytes, 5, rows);
        int* a6 = RowGroups(a, rowBytes, 6, rows);
        int* a7 = RowGroups(a, rowBytes, 7, rows);
        Vector512<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kPairs; p++, b += 2 * PackedMatrix.PanelWidth)
        {
            // One K pair of 32 output features, widened to 16 bits: lane j holds (q[j, 2p], q[j, 2p+1]).
            Vector512<short> b0 = Avx512BW.ConvertToVector512Int16(Vector256.Load(b));
            Vector512<short> b1 = Avx512BW.ConvertToVector512Int16(Vector256.Load(b + 32));
            // Each row's pair (qₓ[2p], qₓ[2p+1]) broadcast to every lane.
            Vector512<short> v = Vector512.Create(a0[p]).AsInt16();
            c00 += Avx512BW.MultiplyAddAdjacent(v, b0);
            c01 += Avx512BW.MultiplyAddAdjacent(v, b1);
            v = Vector512.Create(a1[p]).AsInt16();
            c10 += Avx512BW.MultiplyAddAdjacent(v, b0);
            c11 += Avx512BW.MultiplyAddAdjacent(v, b1);
            v = Vector512.Create(a2[p]).AsInt16();
            c20 += Avx512BW.MultiplyAddAdjacent(v, b0);
            c21 += Avx512BW.MultiplyAddAdjacent(v, b1);
            v = Vector512.Create(a3[p]).AsInt16();
            c30 += Avx512BW.MultiplyAddAdjacent(v, b0);
            c31 += Avx512BW.MultiplyAddAdjacent(v, b1);
            v = Vector512.Create(a4[p]).AsInt16();
            c40 += Avx512BW.MultiplyAddAdjacent(v, b0);
            c41 += Avx512BW.MultiplyAddAdjacent(v, b1);
            v = Vector512.Create(a5[p]).AsInt16();
            c50 += Avx512BW.MultiplyAddAdjacent(v, b0);
            c51 += Avx512BW.MultiplyAddAdjacent(v, b1);
            v = Vector512.Create(a6[p]).AsInt16();
            c60 += Avx512BW.MultiplyAddAdjacent(v, b0);
            c61 += Avx512BW.MultiplyAddAdjacent(v, b1);
            v = Vector512.Create(a7[p]).AsInt16();
            c70 += Avx512BW.MultiplyAddAdjacent(v, b0);
            c71 += Avx512BW.MultiplyAddAdjacent(v, b1);
        }
        c00.Store(c);
        c01.Store(c + 16);
        if (rows > 1) { c10.Store(c + 32); c11.Store(c + 48); }
        if (rows > 2) { c20.Store(c + 64); c21.Store(c + 80); }
        if (rows > 3) { c30.Store(c + 96); c31.Store(c + 112); }
        if (rows > 4) { c40.Store(c + 128); c41.Store(c + 144); }
        if (rows > 5) { c50.Store(c + 160); c51.Store(c + 176); }
        if (rows > 6) { c60.Store(c + 192); c61.Store(c + 208); }
        if (rows > 7) { c70.Store(c + 224); c71.Store(c + 240); }
    }
    /// <summary>The AVX2 micro-kernel: rows (≤ 6) × 32 columns as two passes over 16 columns each (12 ymm accumulators).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel6x32(byte* a, int rowBytes, int rows, int kPairs, sbyte* b, int* c)
    {
        Kernel6x16(a, rowBytes, rows, kPairs, b, c);
        Kernel6x16(a, rowBytes, rows, kPairs, b + 32, c + 16);
    }

    /// <summary>16 of a panel's 32 columns: per K pair, bytes [0, 32) of the pair's 64 hold these columns' weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Kernel6x16(byte* a, int rowBytes, int rows, int kPairs, sbyte* b, int* c)
    {
        int* a0 = RowGroups(a, rowBytes, 0, rows);
        int* a1 = RowGroups(a, rowBytes, 1, rows);
        int* a2 = RowGroups(a, rowBytes, 2, rows);
        int* a3 = RowGroups(a, rowBytes, 3, rows);
        int* a4 = RowGroups(a, rowBytes, 4, rows);
        int* a5 = RowGroups(a, rowBytes, 5, rows);
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kPairs; p++, b += 2 * PackedMatrix.PanelWidth)
        {
            Vector256<short> b0 = Avx2.ConvertToVector256Int16(Vector128.Load(b));
            Vector256<short> b1 = Avx2.ConvertToVector256Int16(Vector128.Load(b + 16));
            Vector256<short> v = Vector256.Create(a0[p]).AsInt16();
            c00 += Avx2.MultiplyAddAdjacent(v, b0);
            c01 += Avx2.MultiplyAddAdjacent(v, b1);
            v = Vector256.Create(a1[p]).AsInt16();
            c10 += Avx2.MultiplyAddAdjacent(v, b0);
            c11 += Avx2.MultiplyAddAdjacent(v, b1);
            v = Vector256.Create(a2[p]).AsInt16();
            c20 += Avx2.MultiplyAddAdjacent(v, b0);
            c21 += Avx2.MultiplyAddAdjacent(v, b1);
            v = Vector256.Create(a3[p]).AsInt16();
            c30 += Avx2.MultiplyAddAdjacent(v, b0);
            c31 += Avx2.MultiplyAddAdjacent(v, b1);
            v = Vector256.Create(a4[p]).AsInt16();
            c40 += Avx2.MultiplyAddAdjacent(v, b0);
            c41 += Avx2.MultiplyAddAdjacent(v, b1);
            v = Vector256.Create(a5[p]).AsInt16();
            c50 += Avx2.MultiplyAddAdjacent(v, b0);
            c51 += Avx2.MultiplyAddAdjacent(v, b1);
        }
        StoreTile6x16(c, rows, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51);
    }

    /// <summary>The VNNI micro-kernel: rows (≤ 6) × 32 columns as two passes over 16 columns each (12 ymm accumulators).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void VnniKernel6x32(byte* a, int rowBytes, int rows, int kQuads, sbyte* b, int* c)
    {
        VnniKernel6x16(a, rowBytes, rows, kQuads, b, c);
        VnniKernel6x16(a, rowBytes, rows, kQuads, b + 64, c + 16);
    }

    /// <summary>
    /// 16 of a panel's 32 columns: per K quad, bytes [0, 64) of the quad's 128 hold these columns'
    /// four weights each; one <c>vpdpbusd</c> adds a row's four u8 activations (broadcast) times them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void VnniKernel6x16(byte* a, int rowBytes, int rows, int kQuads, sbyte* b, int* c)
    {
        int* a0 = RowGroups(a, rowBytes, 0, rows);
        int* a1 = RowGroups(a, rowBytes, 1, rows);
        int* a2 = RowGroups(a, rowBytes, 2, rows);
        int* a3 = RowGroups(a, rowBytes, 3, rows);
        int* a4 = RowGroups(a, rowBytes, 4, rows);
        int* a5 = RowGroups(a, rowBytes, 5, rows);
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kQuads; p++, b += 4 * PackedMatrix.PanelWidth)
        {
            Vector256<sbyte> b0 = Vector256.Load(b), b1 = Vector256.Load(b + 32);
            Vector256<byte> v = Vector256.Create(a0[p]).AsByte();
            c00 = AvxVnni.MultiplyWideningAndAdd(c00, v, b0);
            c01 = AvxVnni.MultiplyWideningAndAdd(c01, v, b1);
            v = Vector256.Create(a1[p]).AsByte();
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, v, b0);
            c11 = AvxVnni.MultiplyWideningAndAdd(c11, v, b1);
            v = Vector256.Create(a2[p]).AsByte();
            c20 = AvxVnni.MultiplyWideningAndAdd(c20, v, b0);
            c21 = AvxVnni.MultiplyWideningAndAdd(c21, v, b1);
            v = Vector256.Create(a3[p]).AsByte();
            c30 = AvxVnni.MultiplyWideningAndAdd(c30, v, b0);
            c31 = AvxVnni.MultiplyWideningAndAdd(c31, v, b1);
            v = Vector256.Create(a4[p]).AsByte();
            c40 = AvxVnni.MultiplyWideningAndAdd(c40, v, b0);
            c41 = AvxVnni.MultiplyWideningAndAdd(c41, v, b1);
            v = Vector256.Create(a5[p]).AsByte();
            c50 = AvxVnni.MultiplyWideningAndAdd(c50, v, b0);
            c51 = AvxVnni.MultiplyWideningAndAdd(c51, v, b1);
        }
        StoreTile6x16(c, rows, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51);
    }

    /// <summary>Stores a 6×16 tile of sums (two ymm per row) into rows 32 apart; rows past <paramref name="rows"/> are not stored.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreTile6x16(int* c, int rows, Vector256<int> c00, Vector256<int> c01, Vector256<int> c10, Vector256<int> c11,
        Vector256<int> c20, Vector256<int> c21, Vector256<int> c30, Vector256<int> c31, Vector256<int> c40, Vector256<int> c41,
        Vector256<int> c50, Vector256<int> c51)
    {
        c00.Store(c);
        c01.Store(c + 8);
        if (rows > 1) { c10.Store(c + 32); c11.Store(c + 40); }
        if (rows > 2) { c20.Store(c + 64); c21.Store(c + 72); }
        if (rows > 3) { c30.Store(c + 96); c31.Store(c + 104); }
        if (rows > 4) { c40.Store(c + 128); c41.Store(c + 136); }
        if (rows > 5) { c50.Store(c + 160); c51.Store(c + 168); }
    }
}
