using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Funnel.Numerics;

/// <summary>
/// The products a linear layer y = x·Wᵀ + b needs in its backward pass, beside <see cref="MatMul"/>'s
/// forward one: dX = dY·W runs on the forward kernel with Wᵀ packed (<see cref="PackTransposed"/>),
/// dW += dYᵀ·X on the same micro-kernel, dY transposed chunk by chunk and X packed into panels. Every output element is summed
/// by one thread in a fixed order, so results do not depend on the thread count.
/// </summary>
internal static class MatMulGradients
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
        if (!Gemm.IsAccelerated)
        {
            AccumulateWeightGradientReference(dy, x, m, n, k, dw);
            return;
        }
        int chunks = (m + GemmTransposedA.ChunkRows - 1) / GemmTransposedA.ChunkRows;
        float[] packed = ArrayPool<float>.Shared.Rent(GemmTransposedA.PackedSize(m, k));
        try
        {
            int rowsPerItem = WorkSplit.ChunkSize(n, maxThreads, Gemm.TileRows, Gemm.BlockRows(GemmTransposedA.ChunkRows));
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
/// <see cref="ChunkRows"/> reduction rows into panels of 32 columns: the product a weight gradient (dYᵀ·X) or
/// attention's backward pass (Pᵀ·dO, dSᵀ·Q) needs. Each chunk of A is transposed into an L2-resident block (rows of A's
/// columns), and the block runs on <see cref="Gemm"/>'s micro-kernel against the chunk's panels, adding onto C after
/// the first chunk.
/// </summary>
[SkipLocalsInit]
internal static unsafe class GemmTransposedA
{
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
        int rows = rowEnd - rowBegin, panels = PackedMatrix.PanelCount(cols);
        if (len == 0)
        {
            if (!accumulate)
                for (int r = rowBegin; r < rowEnd; r++) new Span<float>(c + (nint)r * ldc, cols).Clear();
            return;
        }
        float[] buffer = ArrayPool<float>.Shared.Rent(rows * Math.Min(len, ChunkRows));
        fixed (float* transposed = buffer)
        {
            for (int p0 = 0; p0 < len; p0 += ChunkRows)
            {
                int chunk = Math.Min(ChunkRows, len - p0);
                Transpose(a + (nint)p0 * lda + rowBegin, lda, chunk, rows, transposed);
                GemmOutput output = accumulate || p0 > 0 ? new GemmOutput(c, ldc, null, c, Epilogue.Residual) : GemmOutput.Plain(c, ldc);
                Gemm.Multiply(transposed - (nint)rowBegin * chunk, chunk, rowBegin, rowEnd, chunk, packedB + PanelOffset(p0, 0, panels, chunk), cols, 0, panels, output);
            }
        }
        ArrayPool<float>.Shared.Return(buffer);
    }

    /// <summary>
    /// B[rows × cols] = Aᵀ for A [cols × rows] (row stride <paramref name="lda"/>): 8×8 blocks through registers
    /// (unpack, shuffle, lane permute), the ragged edges one value at a time.
    /// </summary>
    internal static void Transpose(float* a, int lda, int cols, int rows, float* b)
    {
        int r0 = 0;
        if (Avx.IsSupported)
        {
            for (; r0 + 8 <= rows; r0 += 8)
            {
                int p0 = 0;
                for (; p0 + 8 <= cols; p0 += 8)
                {
                    float* s = a + (nint)p0 * lda + r0;
                    Vector256<float> x0 = Avx.LoadVector256(s), x1 = Avx.LoadVector256(s + lda), x2 = Avx.LoadVector256(s + 2 * lda), x3 = Avx.LoadVector256(s + 3 * lda),
                        x4 = Avx.LoadVector256(s + 4 * lda), x5 = Avx.LoadVector256(s + 5 * lda), x6 = Avx.LoadVector256(s + 6 * lda), x7 = Avx.LoadVector256(s + 7 * lda);
                    Vector256<float> t0 = Avx.UnpackLow(x0, x1), t1 = Avx.UnpackHigh(x0, x1), t2 = Avx.UnpackLow(x2, x3), t3 = Avx.UnpackHigh(x2, x3),
                        t4 = Avx.UnpackLow(x4, x5), t5 = Avx.UnpackHigh(x4, x5), t6 = Avx.UnpackLow(x6, x7), t7 = Avx.UnpackHigh(x6, x7);
                    Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE),
                        u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
                    float* d = b + (nint)r0 * cols + p0;
                    Avx.Store(d, Avx.Permute2x128(u0, u4, 0x20));
                    Avx.Store(d + cols, Avx.Permute2x128(u1, u5, 0x20));
                    Avx.Store(d + 2 * cols, Avx.Permute2x128(u2, u6, 0x20));
                    Avx.Store(d + 3 * cols, Avx.Permute2x128(u3, u7, 0x20));
                    Avx.Store(d + 4 * cols, Avx.Permute2x128(u0, u4, 0x31));
                    Avx.Store(d + 5 * cols, Avx.Permute2x128(u1, u5, 0x31));
                    Avx.Store(d + 6 * cols, Avx.Permute2x128(u2, u6, 0x31));
                    Avx.Store(d + 7 * cols, Avx.Permute2x128(u3, u7, 0x31));
                }
                for (; p0 < cols; p0++)
                    for (int r = r0; r < r0 + 8; r++) b[(nint)r * cols + p0] = a[(nint)p0 * lda + r];
            }
        }
        for (; r0 < rows; r0++)
            for (int p = 0; p < cols; p++) b[(nint)r0 * cols + p] = a[(nint)p * lda + r0];
    }
}
