using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Funnel.Numerics;

/// <summary>What a linear layer does to its output after the bias, fused into the matrix kernel.</summary>
internal enum Epilogue
{
    /// <summary>y = x·Wᵀ + b</summary>
    None,
    /// <summary>y = gelu(x·Wᵀ + b), exact erf GELU.</summary>
    Gelu,
    /// <summary>y = x·Wᵀ + b + residual</summary>
    Residual,
}

/// <summary>Dense matrix products for transformer layers. Row-major throughout.</summary>
internal static class MatMul
{
    /// <summary>
    /// y[m×N] = epilogue(x[m×K] · Wᵀ + bias). <paramref name="residual"/> is read only for
    /// <see cref="Epilogue.Residual"/> and may alias <paramref name="y"/>. Rows are split across
    /// up to <paramref name="maxThreads"/> threads (output columns when there are few rows).
    /// </summary>
    public static unsafe void Linear(ReadOnlySpan<float> x, int m, PackedMatrix w, ReadOnlySpan<float> bias, Span<float> y,
        Epilogue epilogue = Epilogue.None, ReadOnlySpan<float> residual = default, int maxThreads = 1)
    {
        int n = w.N, k = w.K;
        ValidateLinear(x.Length, m, n, k, bias.Length, y.Length, epilogue, residual.Length, maxThreads);
        if (m == 0) return;
        if (!Gemm.IsAccelerated)
        {
            LinearReference(x, m, w, bias, y, epilogue, residual);
            return;
        }
        fixed (float* px = x, pw = w.Data, pb = bias, py = y, pr = residual)
        {
            var output = new GemmOutput(py, n, pb, epilogue == Epilogue.Residual ? pr : null, epilogue);
            var split = GemmSplit.For(m, w.Panels, maxThreads, Gemm.TileRows, Gemm.BlockRows(k));
            WorkSplit.Run(new LinearJob(px, k, pw, n, output, split), split.Items, maxThreads);
        }
    }

    /// <summary>The argument checks every linear layer shares, whatever the arithmetic (fp32 here, int8 in <see cref="QuantizedMatMul"/>).</summary>
    internal static void ValidateLinear(int xLength, int m, int n, int k, int biasLength, int yLength, Epilogue epilogue, int residualLength, int maxThreads)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxThreads);
        if (xLength < (long)m * k) throw new ArgumentException($"x holds {xLength} values, expected {m}×{k}", "x");
        if (yLength < (long)m * n) throw new ArgumentException($"y holds {yLength} values, expected {m}×{n}", "y");
        if (biasLength != 0 && biasLength != n) throw new ArgumentException($"bias holds {biasLength} values, expected {n}", "bias");
        if (epilogue == Epilogue.Residual && residualLength < (long)m * n)
            throw new ArgumentException($"residual holds {residualLength} values, expected {m}×{n}", "residual");
    }

    private readonly unsafe struct LinearJob(float* x, int k, float* w, int n, GemmOutput output, GemmSplit split) : IWorkItems
    {
        public void Run(int item)
        {
            var (rows, panels) = split.Item(item);
            Gemm.Multiply(x, k, rows.Start.Value, rows.End.Value, k, w, n, panels.Start.Value, panels.End.Value, output);
        }
    }

    /// <summary>The scalar definition that the fast kernel is tested against.</summary>
    internal static void LinearReference(ReadOnlySpan<float> x, int m, PackedMatrix w, ReadOnlySpan<float> bias, Span<float> y,
        Epilogue epilogue, ReadOnlySpan<float> residual)
    {
        int n = w.N, k = w.K;
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double acc = bias.IsEmpty ? 0 : bias[j];
                for (int p = 0; p < k; p++) acc += x[i * k + p] * w[j, p];
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

/// <summary>Where a product's tile goes and what is fused on the way: bias, GELU or a residual.</summary>
internal readonly unsafe struct GemmOutput(float* y, int ldy, float* bias, float* residual, Epilogue epilogue)
{
    public static GemmOutput Plain(float* y, int ldy) => new(y, ldy, null, null, Epilogue.None);

    public int Ldy => ldy;

    /// <summary>Nothing to add or apply: the sums are the result.</summary>
    public bool IsPlain => bias == null && epilogue == Epilogue.None;

    public float* At(int row, int col) => y + (nint)row * ldy + col;

    /// <summary>Applies the epilogue to one row of 32 finished sums (the first <paramref name="cols"/>
    /// of them real) and writes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(int row, int col, float* tile, int cols)
    {
        if (cols < PackedMatrix.PanelWidth)
        {
            StorePartial(row, col, tile, cols);
            return;
        }
        float* dst = y + (nint)row * ldy + col;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> lo = Vector512.Load(tile), hi = Vector512.Load(tile + 16);
            if (bias != null)
            {
                lo += Vector512.Load(bias + col);
                hi += Vector512.Load(bias + col + 16);
            }
            if (epilogue == Epilogue.Gelu)
            {
                lo = VectorMath.Gelu(lo);
                hi = VectorMath.Gelu(hi);
            }
            else if (epilogue == Epilogue.Residual)
            {
                float* r = residual + (nint)row * ldy + col;
                lo += Vector512.Load(r);
                hi += Vector512.Load(r + 16);
            }
            lo.Store(dst);
            hi.Store(dst + 16);
            return;
        }
        for (int c = 0; c < PackedMatrix.PanelWidth; c += Vector256<float>.Count)
        {
            Vector256<float> v = Vector256.Load(tile + c);
            if (bias != null) v += Vector256.Load(bias + col + c);
            if (epilogue == Epilogue.Gelu) v = VectorMath.Gelu(v);
            else if (epilogue == Epilogue.Residual) v += Vector256.Load(residual + (nint)row * ldy + col + c);
            v.Store(dst + c);
        }
    }

    /// <summary>The ragged right edge, one value at a time so nothing past column N is touched.</summary>
    private void StorePartial(int row, int col, float* tile, int cols)
    {
        for (int c = 0; c < cols; c++)
        {
            float v = tile[c];
            if (bias != null) v += bias[col + c];
            if (epilogue == Epilogue.Gelu) v = VectorMath.Gelu(v);
            else if (epilogue == Epilogue.Residual) v += residual[(nint)row * ldy + col + c];
            y[(nint)row * ldy + col + c] = v;
        }
    }
}

/// <summary>
/// The single-threaded blocked product C = A·Bᵀ over a rectangle of rows × weight panels, B packed
/// as <see cref="PackedMatrix"/>. A is read in place (row stride <c>lda</c>): a block of rows sized
/// to stay in L2 is swept against every panel; the micro-kernel keeps an 8×32 tile (16 zmm
/// accumulators) in registers across the whole K, so the epilogue runs once on finished sums.
/// </summary>
[SkipLocalsInit]
internal static unsafe class Gemm
{
    public static bool IsAccelerated => Avx512F.IsSupported || (Avx2.IsSupported && Fma.IsSupported);

    /// <summary>Rows per micro-tile: 8 with AVX-512, 6 with AVX2 (12 ymm accumulators of 16 registers).</summary>
    public static int TileRows => Avx512F.IsSupported ? 8 : 6;

    /// <summary>Bytes of A kept hot in L2 while every panel of B passes it.</summary>
    private const int RowBlockBytes = 192 * 1024;

    /// <summary>Rows of A (K floats each) swept together against every panel of B.</summary>
    public static int BlockRows(int k) => Math.Clamp(RowBlockBytes / (sizeof(float) * k) / TileRows * TileRows, TileRows, 32 * TileRows);

    public static void Multiply(float* a, int lda, int rowBegin, int rowEnd, int k, float* b, int n, int panelBegin, int panelEnd,
        in GemmOutput output)
    {
        int tileRows = TileRows, blockRows = BlockRows(k);
        int panelStride = k * PackedMatrix.PanelWidth;
        float* tile = stackalloc float[8 * PackedMatrix.PanelWidth];
        for (int i0 = rowBegin; i0 < rowEnd; i0 += blockRows)
        {
            int i1 = Math.Min(i0 + blockRows, rowEnd), tiles = (i1 - i0 + tileRows - 1) / tileRows;
            for (int panel = panelBegin; panel < panelEnd; panel++)
            {
                float* bp = b + (nint)panel * panelStride;
                int col = panel * PackedMatrix.PanelWidth, cols = Math.Min(PackedMatrix.PanelWidth, n - col);
                for (int i = i0; i < i1; i += tileRows)
                {
                    int rows = Math.Min(tileRows, i1 - i);
                    float* ai = a + (nint)i * lda;
                    // Plain full panels are summed straight into y. Anything with an epilogue goes through
                    // the L1-resident tile (measured faster than finishing in y, and a residual may be y
                    // itself), as does the ragged right edge, so nothing past column N is written.
                    bool direct = cols == PackedMatrix.PanelWidth && output.IsPlain;
                    float* c = direct ? output.At(i, col) : tile;
                    int ldc = direct ? output.Ldy : PackedMatrix.PanelWidth;
                    // Every tile of a panel prefetches its share of the next panel into L2, so DRAM streams the
                    // weights at the pace the panel computes instead of in one burst that stalls the first tile.
                    var pf = panel + 1 < panelEnd ? NextPanelPrefetch.For(bp + panelStride, k, (i - i0) / tileRows, tiles) : NextPanelPrefetch.None(bp);
                    if (Avx512F.IsSupported) Kernel8x32(ai, lda, rows, k, bp, c, ldc, pf);
                    else Kernel6x32(ai, lda, rows, k, bp, c, ldc);
                    if (!direct)
                        for (int r = 0; r < rows; r++) output.Store(i + r, col, c + (nint)r * ldc, cols);
                }
            }
        }
    }

    /// <summary>
    /// rows (≤ 8) × 32 columns of A·Bᵀ over all of K, stored to <paramref name="c"/> (row stride
    /// <paramref name="ldc"/>). Missing rows alias the first one and are not stored, which keeps one
    /// loop body for the ragged bottom edge. The epilogue runs afterwards on what was stored, so no
    /// accumulator lives across a call: otherwise the JIT spills all 16 of them on every step.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32(float* a, int lda, int rows, int k, float* b, float* c, int ldc, NextPanelPrefetch pf)
    {
        float* a0 = a;
        float* a1 = rows > 1 ? a + lda : a;
        float* a2 = rows > 2 ? a + 2 * lda : a;
        float* a3 = rows > 3 ? a + 3 * lda : a;
        float* a4 = rows > 4 ? a + 4 * lda : a;
        float* a5 = rows > 5 ? a + 5 * lda : a;
        float* a6 = rows > 6 ? a + 6 * lda : a;
        float* a7 = rows > 7 ? a + 7 * lda : a;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        float* line = pf.First;
        int mask = pf.EveryMask, second = pf.SecondLine;
        for (int p = 0; p < k; p++, b += PackedMatrix.PanelWidth)
        {
            if ((p & mask) == 0)
            {
                Sse.Prefetch1(line);
                Sse.Prefetch1(line + second);
                line += 16 + second;
            }
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16);
            Vector512<float> v = Vector512.Create(a0[p]);
            c00 = Avx512F.FusedMultiplyAdd(v, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(v, b1, c01);
            v = Vector512.Create(a1[p]);
            c10 = Avx512F.FusedMultiplyAdd(v, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(v, b1, c11);
            v = Vector512.Create(a2[p]);
            c20 = Avx512F.FusedMultiplyAdd(v, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(v, b1, c21);
            v = Vector512.Create(a3[p]);
            c30 = Avx512F.FusedMultiplyAdd(v, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(v, b1, c31);
            v = Vector512.Create(a4[p]);
            c40 = Avx512F.FusedMultiplyAdd(v, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(v, b1, c41);
            v = Vector512.Create(a5[p]);
            c50 = Avx512F.FusedMultiplyAdd(v, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(v, b1, c51);
            v = Vector512.Create(a6[p]);
            c60 = Avx512F.FusedMultiplyAdd(v, b0, c60);
            c61 = Avx512F.FusedMultiplyAdd(v, b1, c61);
            v = Vector512.Create(a7[p]);
            c70 = Avx512F.FusedMultiplyAdd(v, b0, c70);
            c71 = Avx512F.FusedMultiplyAdd(v, b1, c71);
        }
        c00.Store(c);
        c01.Store(c + 16);
        if (rows > 1) { c10.Store(c + ldc); c11.Store(c + ldc + 16); }
        if (rows > 2) { c20.Store(c + 2 * ldc); c21.Store(c + 2 * ldc + 16); }
        if (rows > 3) { c30.Store(c + 3 * ldc); c31.Store(c + 3 * ldc + 16); }
        if (rows > 4) { c40.Store(c + 4 * ldc); c41.Store(c + 4 * ldc + 16); }
        if (rows > 5) { c50.Store(c + 5 * ldc); c51.Store(c + 5 * ldc + 16); }
        if (rows > 6) { c60.Store(c + 6 * ldc); c61.Store(c + 6 * ldc + 16); }
        if (rows > 7) { c70.Store(c + 7 * ldc); c71.Store(c + 7 * ldc + 16); }
    }

    /// <summary>The AVX2 micro-kernel: rows (≤ 6) × 32 columns, as two passes over one 16-column half
    /// each (12 ymm accumulators of 16 registers), into the same 32-wide tile.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x32(float* a, int lda, int rows, int k, float* b, float* c, int ldc)
    {
        Kernel6x16(a, lda, rows, k, b, c, ldc);
        Kernel6x16(a, lda, rows, k, b + 16, c + 16, ldc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel6x16(float* a, int lda, int rows, int k, float* b, float* c, int ldc)
    {
        float* a0 = a;
        float* a1 = rows > 1 ? a + lda : a;
        float* a2 = rows > 2 ? a + 2 * lda : a;
        float* a3 = rows > 3 ? a + 3 * lda : a;
        float* a4 = rows > 4 ? a + 4 * lda : a;
        float* a5 = rows > 5 ? a + 5 * lda : a;
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < k; p++, b += PackedMatrix.PanelWidth)
        {
            Vector256<float> b0 = Vector256.Load(b), b1 = Vector256.Load(b + 8);
            Vector256<float> v = Vector256.Create(a0[p]);
            c00 = Fma.MultiplyAdd(v, b0, c00);
            c01 = Fma.MultiplyAdd(v, b1, c01);
            v = Vector256.Create(a1[p]);
            c10 = Fma.MultiplyAdd(v, b0, c10);
            c11 = Fma.MultiplyAdd(v, b1, c11);
            v = Vector256.Create(a2[p]);
            c20 = Fma.MultiplyAdd(v, b0, c20);
            c21 = Fma.MultiplyAdd(v, b1, c21);
            v = Vector256.Create(a3[p]);
            c30 = Fma.MultiplyAdd(v, b0, c30);
            c31 = Fma.MultiplyAdd(v, b1, c31);
            v = Vector256.Create(a4[p]);
            c40 = Fma.MultiplyAdd(v, b0, c40);
            c41 = Fma.MultiplyAdd(v, b1, c41);
            v = Vector256.Create(a5[p]);
            c50 = Fma.MultiplyAdd(v, b0, c50);
            c51 = Fma.MultiplyAdd(v, b1, c51);
        }
        c00.Store(c);
        c01.Store(c + 8);
        if (rows > 1) { c10.Store(c + ldc); c11.Store(c + ldc + 8); }
        if (rows > 2) { c20.Store(c + 2 * ldc); c21.Store(c + 2 * ldc + 8); }
        if (rows > 3) { c30.Store(c + 3 * ldc); c31.Store(c + 3 * ldc + 8); }
        if (rows > 4) { c40.Store(c + 4 * ldc); c41.Store(c + 4 * ldc + 8); }
        if (rows > 5) { c50.Store(c + 5 * ldc); c51.Store(c + 5 * ldc + 8); }
    }
}

/// <summary>
/// Which cache lines of the next weight panel one micro-tile prefetches: its share of them, one or two lines every
/// <c>EveryMask + 1</c> steps along K (a power of two), so the tiles of a panel together touch the whole next panel.
/// </summary>
internal readonly unsafe struct NextPanelPrefetch(float* first, int everyMask, int secondLine)
{
    public float* First => first;

    public int EveryMask => everyMask;

    /// <summary>Floats from a prefetched line to the second one of the same step: 16 (the next line) or 0 (the same line again).</summary>
    public int SecondLine => secondLine;

    /// <summary>Re-touches the current panel's first line, which costs nothing: for the last panel of an item.</summary>
    public static NextPanelPrefetch None(float* panel) => new(panel, int.MaxValue, 0);

    /// <summary>Tile <paramref name="tile"/> of <paramref name="tiles"/> over a panel of <paramref name="k"/> steps of 32 floats (2 lines each).</summary>
    public static NextPanelPrefetch For(float* nextPanel, int k, int tile, int tiles)
    {
        int lines = 2 * k, share = (lines + tiles - 1) / tiles;
        // A lone tile takes both lines of a step; otherwise one line every power-of-two steps, rounded so the share
        // is covered within K steps.
        if (share > k) return new NextPanelPrefetch(nextPanel, 0, 16);
        if (tile * share >= lines) return None(nextPanel); // more tiles than lines: the earlier tiles cover them
        int every = 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)(k / share)));
        return new NextPanelPrefetch(nextPanel + (nint)tile * share * 16, every - 1, 0);
    }
}
