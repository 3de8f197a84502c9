using System.Runtime.CompilerServices;

namespace Funnel.Numerics;

/// <summary>A kernel's work cut into independent numbered items.</summary>
internal interface IWorkItems
{
    void Run(int item);
}

/// <summary>
/// Runs a job's items on the calling thread and up to maxThreads − 1 threads of the shared
/// <see cref="WorkerTeam"/>, or of the thread pool while another job holds the team. Workers take
/// the next item from a shared counter rather than a fixed share, so a thread slowed by another
/// process on a shared machine (or a longer sequence) does not hold the others up.
/// </summary>
internal static class WorkSplit
{
    public static void Run<TJob>(TJob job, int items, int maxThreads) where TJob : struct, IWorkItems
    {
        int workers = Math.Min(items, maxThreads);
        if (workers <= 1)
        {
            for (int i = 0; i < items; i++) job.Run(i);
            return;
        }
        if (WorkerTeam.Shared.TryRun(job, items, workers - 1)) return;
        var next = new StrongBox<int>(0);
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, _ =>
        {
            for (int i = Interlocked.Increment(ref next.Value) - 1; i < items; i = Interlocked.Increment(ref next.Value) - 1) job.Run(i);
        });
    }

    /// <summary>How many of <paramref name="count"/> units go in one item: about four items per
    /// worker for balance, a multiple of <paramref name="align"/>, at most <paramref name="most"/>.</summary>
    public static int ChunkSize(int count, int maxThreads, int align, int most)
    {
        int perItem = (count + 4 * maxThreads - 1) / (4 * maxThreads);
        perItem = (perItem + align - 1) / align * align;
        return Math.Clamp(perItem, align, Math.Max(align, most));
    }
}
