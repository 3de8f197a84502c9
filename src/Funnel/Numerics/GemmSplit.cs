namespace Funnel.Numerics;

/// <summary>
/// How a linear layer's product C[m × N] = A·Bᵀ is cut into work items: a rectangle of rows × weight panels each.
/// </summary>
/// <remarks>
/// The weights are the bigger operand until m reaches a few hundred rows, and a row item sweeps all of them, so every
/// row item streams the whole of B again. Hence: one thread takes everything as one item (the kernel blocks the rows
/// itself); with too few rows to give each thread a full row block, threads take weight panels instead, so each panel
/// crosses the memory bus once and A stays in every thread's L2; only larger products are cut by rows.
/// </remarks>
internal readonly record struct GemmSplit(int M, int Panels, bool ByRows, int Chunk)
{
    public int Items => M == 0 ? 0 : ByRows ? (M + Chunk - 1) / Chunk : (Panels + Chunk - 1) / Chunk;

    public static GemmSplit For(int m, int panels, int maxThreads, int tileRows, int blockRows)
    {
        if (maxThreads == 1) return new GemmSplit(m, panels, ByRows: true, Chunk: Math.Max(m, 1));
        if (m < maxThreads * blockRows && panels >= maxThreads) return new GemmSplit(m, panels, ByRows: false, Chunk: 1);
        return new GemmSplit(m, panels, ByRows: true, WorkSplit.ChunkSize(m, maxThreads, tileRows, blockRows));
    }

    /// <summary>The rows and panels of one item.</summary>
    public (Range Rows, Range Panels) Item(int item)
    {
        int begin = item * Chunk;
        return ByRows
            ? (begin..Math.Min(M, begin + Chunk), 0..Panels)
            : (0..M, begin..Math.Min(Panels, begin + Chunk));
    }
}
