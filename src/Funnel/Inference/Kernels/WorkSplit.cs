namespace Funnel.Inference.Kernels;

/// <summary>A kernel's work cut into <c>parts</c> independent pieces, one per thread.</summary>
internal interface IPartitionedJob
{
    void Run(int part, int parts);
}

/// <summary>Runs the parts of a job on the calling thread and up to parts − 1 pool threads.</summary>
internal static class WorkSplit
{
    public static void Run<TJob>(TJob job, int parts) where TJob : struct, IPartitionedJob
    {
        if (parts <= 1)
        {
            job.Run(0, 1);
            return;
        }
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part => job.Run(part, parts));
    }

    /// <summary>The <paramref name="part"/>-th of <paramref name="parts"/> near-equal slices of [0, count),
    /// boundaries rounded to multiples of <paramref name="align"/>.</summary>
    public static (int Begin, int End) Range(int count, int part, int parts, int align)
    {
        int units = (count + align - 1) / align;
        int begin = (int)((long)units * part / parts) * align, end = (int)((long)units * (part + 1) / parts) * align;
        return (Math.Min(begin, count), Math.Min(end, count));
    }
}
