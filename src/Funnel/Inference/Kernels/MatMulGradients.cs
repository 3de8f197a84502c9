using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Funnel.Inference.Kernels;

/// <summary>
/// The products a linear layer y = x·Wᵀ + b needs in its backward pass, beside <see cref="MatMul"/>'s
/// forward one: dX = dY·W runs on the forward kernel with Wᵀ packed (<see cref="PackTransposed"/>),
/// dW += dYᵀ·X on a micro-kernel that reads dY transposed in place. Every output element is summed
/// by one thread in a fixed order, so results do not depend on the thread count.
/// </summary>
public static class MatMulGradients
{
    /// <summary>Wᵀ for W given row-major as [n × k]: a <see cref="PackedMatrix"/> with N = k and K = n, so
    /// that <c>MatMul.Linear(dY, m, PackTransposed(W, n, k), [], dX)</c> gives dX[m×k] = dY[m×n]·W.</summary>
    public static PackedMatrix PackTransposed(ReadOnlySpan<float> w, int n, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        var packed = new PackedMatrix(k, n, new float[checked(PackedMatrix.PanelCount(k) * PackedMatrix.PanelWidth * n)]);
        PackTransposedInto(w, n, k, packed);
        return packed;
    }

    /// <summary>Re-packs Wᵀ into <paramref name="destination"/> (made by <see cref="PackTransposed"/> for
    /// the same shape) after W changed.</summary>
    public static unsafe void PackTransposedInto(ReadOnlySpan<float> w, int n, int k, PackedMatrix destination)
    {
        if (w.Length != checked(n * k)) throw new ArgumentException($"expected {n}×{k} = {n * k} values, got {w.Length}", nameof(w));
        if (destination.N != k || destination.K != n)
            throw new ArgumentException($"destination is packed for {destination.N}×{destination.K}, Wᵀ is {k}×{n}", nameof(destination));
        // W's rows are Wᵀ's columns: each panel of Wᵀ is 32 consecutive floats of every row of W.
        fixed (float* pw = w, pd = destination.Data) Attention.PackRows(pw, n, k, k, pd);
    }

    /// <summary>
    /// dW[n×k] += dYᵀ·X for dY [m×n] and X [m×k], both row-major: the weight gradient of a linear
    /// layer over a batch of m rows. X is first copied into contiguous panels (32 columns × a chunk of rows, the
    /// layout the micro-kernel streams); dY is read in place. Output rows are shared among up to
    /// <paramref name="maxThreads"/> threads.
    /// </summary>
    public static unsafe void AccumulateWeightGradient(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int m, int n, int k, Span<float> dw, int maxThreads = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxThreads);
        if (dy.Length < (long)m * n) throw new ArgumentException($"dy holds {dy.Length} values, expected {m}×{n}", nameof(dy));
        if (x.Length < (long)m * k) throw new ArgumentException($"x holds {x.Length} values, expected {m}×{k}", nameof(x));
        if (dw.Length < (long)n * k) throw new ArgumentException($"dw holds {dw.Length} values, expected {n}×{k}", nameof(dw));
        if (m == 0) return;
        if (!Avx512F.IsSupported)
        {
            AccumulateWeightGradientReference(dy, x, m, n, k, dw);
            return;
        }
        int chunks = (m + GemmTransposedA.ChunkRows - 1) / GemmTransposedA.ChunkRows;
        float[] packed = ArrayPool<float>.Shared.Rent(GemmTransposedA.PackedSize(m, k));
        try
        {
            int rowsPerItem = WorkSplit.ChunkSize(n, maxThreads, GemmTransposedA.TileRows, 192);
            fixed (float* pdy = dy, px = x, pdw = dw, pp = packed)
            {
                WorkSplit.Run(new PackJob(px, m, k, pp), chunks, maxThreads);
                WorkSplit.Run(new WeightGradientJob(pdy, pp, m, n, k, pdw, rowsPerItem), (n + rowsPerItem - 1) / rowsPerItem, maxThreads);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(packed);
        }
    }

    /// <summary>One chunk of X's rows into its panels (see <see cref="GemmTransposedA.PanelOffset"/>).</summary>
    private readonly unsafe struct PackJob(float* x, int m, int k, float* packed) : IWorkItems
    {
        public void Run(int item) => GemmTransposedA.PackChunk(x, k, m, k, item, packed);
    }

    private readonly unsafe struct WeightGradientJob(float* dy, float* packedX, int m, int n, int k, float* dw, int rowsPerItem) : IWorkItems
    {
        public void Run(int item) =>
            GemmTransposedA.Multiply(dy, n, packedX, m, dw, k, item * rowsPerItem, Math.Min(n, (item + 1) * rowsPerItem), k, accumulate: true);
    }

    /// <summary>The scalar definition that <see cref="AccumulateWeightGradient"/> is tested against.</summary>
    internal static void AccumulateWeightGradientReference(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int m, int n, int k, Span<float> dw)
    {
        for (int j = 0; j < n; j++)
        {
            for (int p = 0; p < k; p++)
            {
                double acc = 0;
                for (int i = 0; i < m; i++) acc += dy[i * n + j] * x[i * k + p];
                dw[j * k + p] += (float)acc;
            }
        }
    }

    /// <summary>db[n] += the column sums of dY [m×n], row by row (a fixed order). Column slices are
    /// shared among up to <paramref name="maxThreads"/> threads.</summary>
    public static unsafe void AccumulateBiasGradient(ReadOnlySpan<float> dy, int m, Span<float> db, int maxThreads = 1)
    {
        int n = db.Length;
        if (dy.Length < (long)m * n) throw new ArgumentException($"dy holds {dy.Length} values, expected {m}×{n}", nameof(dy));
        if (m == 0 || n == 0) return;
        const int Slice = 128;
        fixed (float* pdy = dy, pdb = db)
            WorkSplit.Run(new BiasGradientJob(pdy, m, n, pdb, Slice), (n + Slice - 1) / Slice, m * n < 1 << 16 ? 1 : maxThreads);
    }

    private readonly unsafe struct BiasGradientJob(float* dy, int m, int n, float* db, int slice) : IWorkItems
    {
        public void Run(int item)
        {
            int col = item * slice, cols = Math.Min(slice, n - col);
            var sum = new Span<float>(db + col, cols);
            for (int i = 0; i < m; i++) TensorPrimitives.Add(sum, new ReadOnlySpan<float>(dy + (nint)i * n + col, cols), sum);
        }
    }
}

/// <summary>
/// C (+)= Aᵀ·B with A [len × rows] read in place (row stride lda) and B [len × cols] packed by chunks of
/// <see cref="ChunkRows"/> reduction rows into panels of 32 columns (<see cref="Attention.PackRows"/> per chunk): the
/// transposed-A twin of <see cref="Gemm"/>. The reduction runs chunk by chunk, each chunk's B panel (32 KiB) staying
/// in L1 while every 8-row tile of the block passes it; the micro-kernel keeps an 8×32 tile in 16 zmm
/// accumulators, loaded from C when accumulating.
/// </summary>
[SkipLocalsInit]
internal static unsafe class GemmTransposedA
{
    public const int TileRows = 8;

    /// <summary>Reduction rows per chunk: a B panel of 256 × 32 floats is 32 KiB.</summary>
    public const int ChunkRows = 256;

    private const int W = PackedMatrix.PanelWidth;

    /// <summary>Where a panel of the chunk starting at reduction row <paramref name="p0"/> lies in packed B: chunks follow
    /// each other (all but the last <see cref="ChunkRows"/> long), a chunk's panels too, each chunkLength × 32 floats.</summary>
    public static nint PanelOffset(int p0, int panel, int panels, int chunkLength) => (nint)p0 * panels * W + (nint)panel * chunkLength * W;

    /// <summary>Floats of packed B for <paramref name="len"/> rows of <paramref name="cols"/> columns (the last panel zero-padded).</summary>
    public static int PackedSize(int len, int cols) => checked(PackedMatrix.PanelCount(cols) * W * len);

    /// <summary>Packs chunk <paramref name="chunk"/> of B [len × cols] (rows <paramref name="ldb"/> apart).</summary>
    public static void PackChunk(float* b, int ldb, int len, int cols, int chunk, float* packed)
    {
        int p0 = chunk * ChunkRows, rows = Math.Min(ChunkRows, len - p0);
        Attention.PackRows(b + (nint)p0 * ldb, rows, cols, ldb, packed + PanelOffset(p0, 0, PackedMatrix.PanelCount(cols), rows));
    }

    /// <summary>Packs all of B.</summary>
    public static void Pack(float* b, int ldb, int len, int cols, float* packed)
    {
        for (int chunk = 0; chunk * ChunkRows < len; chunk++) PackChunk(b, ldb, len, cols, chunk, packed);
    }

    /// <summary>Rows [rowBegin, rowEnd) and all <paramref name="cols"/> columns of C (row stride <paramref name="ldc"/>):
    /// C[r, c] = (accumulate ? C[r, c] : 0) + Σ_p A[p, r]·B[p, c].</summary>
    public static void Multiply(float* a, int lda, float* packedB, int len, float* c, int ldc, int rowBegin, int rowEnd, int cols, bool accumulate)
    {
        if (len == 0)
        {
            if (!accumulate)
                for (int r = rowBegin; r < rowEnd; r++) new Span<float>(c + (nint)r * ldc, cols).Clear();
            return;
        }
        float* tile = stackalloc float[TileRows * W];
        int panels = PackedMatrix.PanelCount(cols), tiles = (rowEnd - rowBegin + TileRows - 1) / TileRows;
        // A's chunk is copied tile by tile ([tile][p][8], zero-padded), so the micro-kernel reads it sequentially.
        float[] buffer = ArrayPool<float>.Shared.Rent(tiles * TileRows * Math.Min(len, ChunkRows));
        fixed (float* packedA = buffer)
        {
            for (int p0 = 0; p0 < len; p0 += ChunkRows)
            {
                int chunk = Math.Min(ChunkRows, len - p0);
                bool add = accumulate || p0 > 0;
                PackA(a + (nint)p0 * lda + rowBegin, lda, chunk, rowEnd - rowBegin, packedA);
                for (int panel = 0; panel < panels; panel++)
                {
                    int col = panel * W, width = Math.Min(W, cols - col);
                    float* bp = packedB + PanelOffset(p0, panel, panels, chunk);
                    for (int t = 0; t < tiles; t++)
                    {
                        int i = rowBegin + t * TileRows, rows = Math.Min(TileRows, rowEnd - i);
                        float* ai = packedA + (nint)t * chunk * TileRows;
                        float* ci = c + (nint)i * ldc + col;
                        if (width == W)
                        {
                            Kernel8x32(ai, TileRows, rows, chunk, bp, ci, ldc, add);
                            continue;
                        }
                        // The ragged right edge goes through a full tile, so nothing past column N is read or written.
                        for (int r = 0; r < rows; r++)
                            for (int j = 0; j < W; j++) tile[r * W + j] = add && j < width ? ci[(nint)r * ldc + j] : 0;
                        Kernel8x32(ai, TileRows, rows, chunk, bp, tile, W, add: true);
                        for (int r = 0; r < rows; r++) new ReadOnlySpan<float>(tile + r * W, width).CopyTo(new Span<float>(ci + (nint)r * ldc, width));
                    }
                }
            }
        }
        ArrayPool<float>.Shared.Return(buffer);
    }

    /// <summary>A[p, 0 … rows) for p in the chunk as tiles of 8 columns: tile t holds A[p, 8t … 8t+7] for every p, side by side.</summary>
    private static void PackA(float* a, int lda, int chunk, int rows, float* packed)
    {
        for (int t = 0; t * TileRows < rows; t++)
        {
            int width = Math.Min(TileRows, rows - t * TileRows);
            float* dst = packed + (nint)t * chunk * TileRows, src = a + t * TileRows;
            if (width == TileRows)
            {
                for (int p = 0; p < chunk; p++) Vector256.Load(src + (nint)p * lda).Store(dst + p * TileRows);
                continue;
            }
            for (int p = 0; p < chunk; p++)
                for (int r = 0; r < TileRows; r++) dst[p * TileRows + r] = r < width ? src[(nint)p * lda + r] : 0;
        }
    }

    /// <summary>rows (≤ 8) × 32 of Aᵀ·B over <paramref name="len"/> reduction rows, B a contiguous panel: C row r
    /// takes column r of A. Missing rows alias column 0 and are neither loaded nor stored.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32(float* a, int lda, int rows, int len, float* b, float* c, int ldc, bool add)
    {
        nint o1 = rows > 1 ? 1 : 0, o2 = rows > 2 ? 2 : 0, o3 = rows > 3 ? 3 : 0, o4 = rows > 4 ? 4 : 0,
            o5 = rows > 5 ? 5 : 0, o6 = rows > 6 ? 6 : 0, o7 = rows > 7 ? 7 : 0;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        if (add)
        {
            c00 = Vector512.Load(c); c01 = Vector512.Load(c + 16);
            if (rows > 1) { c10 = Vector512.Load(c + ldc); c11 = Vector512.Load(c + ldc + 16); }
            if (rows > 2) { c20 = Vector512.Load(c + 2 * ldc); c21 = Vector512.Load(c + 2 * ldc + 16); }
            if (rows > 3) { c30 = Vector512.Load(c + 3 * ldc); c31 = Vector512.Load(c + 3 * ldc + 16); }
            if (rows > 4) { c40 = Vector512.Load(c + 4 * ldc); c41 = Vector512.Load(c + 4 * ldc + 16); }
            if (rows > 5) { c50 = Vector512.Load(c + 5 * ldc); c51 = Vector512.Load(c + 5 * ldc + 16); }
            if (rows > 6) { c60 = Vector512.Load(c + 6 * ldc); c61 = Vector512.Load(c + 6 * ldc + 16); }
            if (rows > 7) { c70 = Vector512.Load(c + 7 * ldc); c71 = Vector512.Load(c + 7 * ldc + 16); }
        }
        for (int p = 0; p < len; p++, a += lda, b += W)
        {
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16);
            Vector512<float> v = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(v, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(v, b1, c01);
            v = Vector512.Create(a[o1]);
            c10 = Avx512F.FusedMultiplyAdd(v, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(v, b1, c11);
            v = Vector512.Create(a[o2]);
            c20 = Avx512F.FusedMultiplyAdd(v, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(v, b1, c21);
            v = Vector512.Create(a[o3]);
            c30 = Avx512F.FusedMultiplyAdd(v, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(v, b1, c31);
            v = Vector512.Create(a[o4]);
            c40 = Avx512F.FusedMultiplyAdd(v, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(v, b1, c41);
            v = Vector512.Create(a[o5]);
            c50 = Avx512F.FusedMultiplyAdd(v, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(v, b1, c51);
            v = Vector512.Create(a[o6]);
            c60 = Avx512F.FusedMultiplyAdd(v, b0, c60);
            c61 = Avx512F.FusedMultiplyAdd(v, b1, c61);
            v = Vector512.Create(a[o7]);
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
}
