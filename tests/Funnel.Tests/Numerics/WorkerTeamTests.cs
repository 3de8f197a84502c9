using Funnel.Numerics;

namespace Funnel.Tests.Numerics;

public class WorkerTeamTests
{
    /// <summary>Counts how often each item ran, and on which threads.</summary>
    private sealed class CountingJob(int items, Action<int>? each = null) : IWorkItems
    {
        public readonly int[] Runs = new int[items];
        public readonly HashSet<int> Threads = [];

        public void Run(int item)
        {
            Interlocked.Increment(ref Runs[item]);
            lock (Threads) Threads.Add(Environment.CurrentManagedThreadId);
            each?.Invoke(item);
        }
    }

    [Fact]
    public void Every_item_of_every_job_runs_exactly_once_whatever_the_helper_count_and_pauses()
    {
        using var team = new WorkerTeam(3);
        var random = new Random(7);
        for (int job = 0; job < 400; job++)
        {
            int items = random.Next(0, 40), helpers = random.Next(0, 5);
            // Some jobs are slow enough for several threads to take part; some pauses outlast the
            // workers' spin, so they must be woken from sleep.
            var work = new CountingJob(items, _ => Thread.SpinWait(job % 3 == 0 ? 2_000 : 0));
            Assert.True(team.TryRun(work, items, helpers));
            Assert.All(work.Runs, runs => Assert.Equal(1, runs));
            Assert.True(work.Threads.Count <= 1 + Math.Min(helpers, 3), $"job {job}: {work.Threads.Count} threads for {helpers} helpers");
            if (job % 50 == 0) Thread.Sleep(5);
        }
    }

    [Fact]
    public void Helpers_take_part_in_a_long_job()
    {
        using var team = new WorkerTeam(1);
        using var started = new CountdownEvent(2);
        // Each item waits until two threads have started one, so the job finishes only if a worker
        // joins the caller.
        var job = new CountingJob(2, _ => { started.Signal(); Assert.True(started.Wait(TimeSpan.FromSeconds(10))); });
        Assert.True(team.TryRun(job, 2, helpers: 1));
        Assert.Equal(2, job.Threads.Count);
    }

    [Fact]
    public void A_failing_item_reaches_the_caller_and_the_team_keeps_working()
    {
        using var team = new WorkerTeam(2);
        var failing = new CountingJob(64, item => { if (item == 40) throw new InvalidOperationException("item 40"); });
        var error = Assert.Throws<InvalidOperationException>(() => team.TryRun(failing, 64, helpers: 2));
        Assert.Equal("item 40", error.Message);
        var next = new CountingJob(64);
        Assert.True(team.TryRun(next, 64, helpers: 2));
        Assert.All(next.Runs, runs => Assert.Equal(1, runs));
    }

    [Fact]
    public async Task A_second_caller_is_refused_while_a_job_holds_the_team_and_a_nested_job_is_refused_too()
    {
        using var team = new WorkerTeam(1);
        using var inJob = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        bool? nested = null;
        var holding = new CountingJob(1, _ =>
        {
            nested = team.TryRun(new CountingJob(1), 1, helpers: 1); // on the dispatching thread itself
            inJob.Set();
            Assert.True(release.Wait(TimeSpan.FromSeconds(10)));
        });
        var first = Task.Run(() => team.TryRun(holding, 1, helpers: 1));
        Assert.True(inJob.Wait(TimeSpan.FromSeconds(10)));
        var refused = new CountingJob(4);
        Assert.False(team.TryRun(refused, 4, helpers: 1));
        Assert.All(refused.Runs, runs => Assert.Equal(0, runs));
        release.Set();
        Assert.True(await first.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.False(nested);
    }

    [Fact]
    public void Concurrent_callers_through_WorkSplit_each_get_every_item_once()
    {
        // WorkSplit falls back to the thread pool when the shared team is busy.
        var results = new int[8][];
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, caller =>
        {
            var sums = new int[1000];
            for (int round = 0; round < 50; round++) WorkSplit.Run(new AddJob(sums), sums.Length, maxThreads: 3);
            results[caller] = sums;
        });
        Assert.All(results, sums => Assert.All(sums, s => Assert.Equal(50, s)));
    }

    [Fact]
    public void A_disposed_team_runs_jobs_on_the_caller_alone()
    {
        var team = new WorkerTeam(2);
        team.Dispose();
        var job = new CountingJob(16);
        Assert.True(team.TryRun(job, 16, helpers: 2));
        Assert.All(job.Runs, runs => Assert.Equal(1, runs));
        Assert.Equal([Environment.CurrentManagedThreadId], job.Threads);
    }

    private readonly struct AddJob(int[] sums) : IWorkItems
    {
        public void Run(int item) => sums[item]++; // each item belongs to one thread per round
    }
}
