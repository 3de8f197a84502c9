using System.Diagnostics;

namespace Funnel.Numerics;

/// <summary>
/// A fixed set of threads that run the items of one kernel job at a time beside the calling
/// thread, as an OpenMP team does. A forward pass issues thousands of short jobs (one per linear
/// layer, attention and quantization step of each batch); handing each to the .NET thread pool
/// costs a wake-up per job, and the pool's spare threads spin on the same cores as the work.
/// Team threads instead spin briefly for the next job, then sleep.
/// </summary>
/// <remarks>
/// Invariants:
/// <list type="bullet">
/// <item>At most one job runs at a time: <see cref="TryRun"/> holds <c>_dispatch</c> from
/// publishing a job until every worker it woke has reported back, so a job's fields are never
/// rewritten while a worker still reads them.</item>
/// <item><c>_generation</c> changes only under <c>_dispatch</c>; a worker runs each generation at
/// most once, and only when its index is below that generation's <c>_participants</c>.</item>
/// <item>A worker is either awake (it will see the next generation by polling) or has announced
/// sleep in <c>_asleep</c> before blocking; a dispatcher that swaps a worker's flag from asleep to
/// awake owes it exactly one semaphore release, so no wake-up is lost or doubled.</item>
/// </list>
/// </remarks>
internal sealed class WorkerTeam : IDisposable
{
    /// <summary>How long an idle worker polls for the next job before it sleeps. Jobs of a forward
    /// pass follow each other within microseconds; between batches or requests the worker sleeps.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 10_000; // 100 µs

    /// <summary>One team for the process, sized to the machine, as the thread pool is: teams per
    /// encoder would put several sets of spinning threads on the same cores.</summary>
    public static WorkerTeam Shared => LazyShared.Value;

    private static readonly Lazy<WorkerTeam> LazyShared = new(() => new WorkerTeam(Environment.ProcessorCount - 1));

    private readonly Lock _dispatch = new();
    private readonly SemaphoreSlim[] _wake;
    private readonly int[] _asleep;
    private int _generation;
    private int _participants;
    private int _pending;
    private IWorkItems? _job;
    private int _items;
    private int _next;
    private Exception? _failure;
    private volatile bool _disposed;

    /// <summary>Starts <paramref name="workers"/> background threads; tests make small teams, the
    /// product uses <see cref="Shared"/>.</summary>
    internal WorkerTeam(int workers)
    {
        _wake = new SemaphoreSlim[Math.Max(0, workers)];
        _asleep = new int[_wake.Length];
        for (int w = 0; w < _wake.Length; w++)
        {
            _wake[w] = new SemaphoreSlim(0);
            int index = w;
            new Thread(() => Work(index)) { IsBackground = true, Name = $"Funnel kernel worker {w + 1}" }.Start();
        }
    }

    /// <summary>Runs items 0…<paramref name="items"/>−1 of <paramref name="job"/> on the calling thread
    /// and <paramref name="helpers"/> workers, each taking the next item from a shared counter. Returns
    /// false, having run nothing, when another thread's job holds the team.</summary>
    public bool TryRun(IWorkItems job, int items, int helpers)
    {
        // A job that starts another job on the dispatching thread would find the lock its own.
        if (_dispatch.IsHeldByCurrentThread || !_dispatch.TryEnter()) return false;
        try
        {
            helpers = _disposed ? 0 : Math.Min(helpers, _wake.Length);
            _job = job;
            _items = items;
            _next = 0;
            _failure = null;
            _participants = helpers;
            Volatile.Write(ref _pending, helpers);
            Interlocked.Increment(ref _generation); // full fence: the job is visible before the new generation
            for (int w = 0; w < helpers; w++)
            {
                if (Interlocked.Exchange(ref _asleep[w], 0) == 1) _wake[w].Release();
            }
            Exception? own = RunItems();
            var wait = new SpinWait();
            while (Volatile.Read(ref _pending) != 0) wait.SpinOnce(sleep1Threshold: -1);
            _job = null;
            Exception? failure = own ?? _failure;
            if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
            return true;
        }
        finally
        {
            _dispatch.Exit();
        }
    }

    /// <summary>Stops the workers once they finish the job in hand; later jobs run on the caller alone.</summary>
    public void Dispose()
    {
        lock (_dispatch)
        {
            if (_disposed) return;
            _disposed = true;
            _participants = 0;
            Interlocked.Increment(ref _generation);
            for (int w = 0; w < _wake.Length; w++)
            {
                if (Interlocked.Exchange(ref _asleep[w], 0) == 1) _wake[w].Release();
            }
        }
    }

    private Exception? RunItems()
    {
        try
        {
            IWorkItems job = _job!;
            for (int i = Interlocked.Increment(ref _next) - 1; i < _items; i = Interlocked.Increment(ref _next) - 1) job.Run(i);
            return null;
        }
        catch (Exception e)
        {
            Volatile.Write(ref _next, _items); // the others stop taking items
            return e;
        }
    }

    private void Work(int index)
    {
        int seen = 0;
        while (true)
        {
            seen = AwaitGeneration(index, seen);
            if (_disposed) return;
            if (index >= Volatile.Read(ref _participants)) continue;
            Exception? failure = RunItems();
            if (failure is not null) Interlocked.CompareExchange(ref _failure, failure, null);
            Interlocked.Decrement(ref _pending);
        }
    }

    private int AwaitGeneration(int index, int seen)
    {
        long until = Stopwatch.GetTimestamp() + SpinTicks;
        var wait = new SpinWait();
        while (true)
        {
            int generation = Volatile.Read(ref _generation);
            if (generation != seen) return generation;
            if (Stopwatch.GetTimestamp() < until)
            {
                wait.SpinOnce(sleep1Threshold: -1);
                continue;
            }
            Interlocked.Exchange(ref _asleep[index], 1); // announce sleep, then look once more
            if (Volatile.Read(ref _generation) != seen && Interlocked.Exchange(ref _asleep[index], 0) == 1) continue;
            _wake[index].Wait(); // a dispatcher swapped the flag back and released once
            until = Stopwatch.GetTimestamp() + SpinTicks;
        }
    }
}
