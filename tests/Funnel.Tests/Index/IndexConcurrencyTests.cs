using System.Collections.Concurrent;
using Funnel.Index;

namespace Funnel.Tests.Index;

/// <summary>Inserters, upserters, removers and searchers on one index at once; every answer must be valid.</summary>
public class IndexConcurrencyTests
{
    private const int Dim = 16;

    /// <summary>Two deterministic versions per id, so a returned score can be checked against the id's vectors.</summary>
    private static float[] VectorOf(long id, int version) => IndexTestData.Clustered(1, Dim, 1, seed: (int)(id * 2 + version))[0];

    public static TheoryData<string> Kinds => ["hnsw", "flat"];

    [Theory, MemberData(nameof(Kinds))]
    public async Task HammerFromSeveralThreads(string kind)
    {
        using VectorIndex index = kind == "hnsw"
            ? new HnswIndex(Dim, DistanceMetric.Cosine, new HnswOptions { M = 8, EfConstruction = 40, EfSearch = 32 })
            : new FlatIndex(Dim);
        const int initial = 1000, total = 3000;
        var versions = Enumerable.Range(0, total).Select(i => new[] { VectorOf(i, 0), VectorOf(i, 1) }).ToArray();
        index.AddBatch(Enumerable.Range(0, initial).Select(i => new VectorRecord(i, versions[i][0])).ToList());

        var errors = new ConcurrentQueue<string>();
        var removed = new ConcurrentDictionary<long, bool>();
        int searches = 0;
        using var done = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            var rng = new Random(r);
            while (!done.IsCancellationRequested)
            {
                var q = versions[rng.Next(total)][rng.Next(2)];
                var hits = index.Search(q, 10);
                Interlocked.Increment(ref searches);
                if (hits.Select(h => h.Id).Distinct().Count() != hits.Count) errors.Enqueue("duplicate ids");
                for (int i = 1; i < hits.Count; i++) if (hits[i].Score > hits[i - 1].Score) errors.Enqueue("unsorted scores");
                foreach (var h in hits)
                {
                    if (h.Id < 0 || h.Id >= total) { errors.Enqueue($"unknown id {h.Id}"); continue; }
                    bool matches = versions[h.Id].Any(v => Math.Abs(IndexTestData.Score(DistanceMetric.Cosine, q, v) - h.Score) < 1e-4);
                    if (!matches) errors.Enqueue($"score {h.Score} of id {h.Id} matches none of its vectors");
                }
            }
        })).ToArray();
        // Writers start once searches are running, so the two really overlap.
        while (Volatile.Read(ref searches) == 0) await Task.Delay(1);
        var writers = new[]
        {
            Task.Run(() => { for (int i = initial; i < total; i++) index.Upsert(i, versions[i][0]); }),
            Task.Run(() => { for (int i = 0; i < initial; i += 3) index.Upsert(i, versions[i][1]); }),
            // Removes ids the second writer never touches, so the final live set does not depend on the interleaving.
            Task.Run(() =>
            {
                for (int i = 1; i < total; i += 5)
                {
                    if (i < initial && i % 3 == 0) continue;
                    if (index.Remove(i)) removed[i] = true;
                    Thread.Yield();
                }
            }),
        };
        await Task.WhenAll(writers);
        done.Cancel();
        await Task.WhenAll(readers);

        Assert.Empty(errors);
        var expected = Enumerable.Range(0, total).Where(i => !removed.ContainsKey(i)).Select(i => (long)i).ToHashSet();
        Assert.Equal(expected.Count, index.Count);
        Assert.Equal(expected.Order(), index.GetIds().Order());
        // After the dust settles, every live id is found by its own current vector.
        int self = 0;
        foreach (long id in expected)
        {
            var current = id < initial && id % 3 == 0 ? versions[id][1] : versions[id][0];
            var top = index.Search(current, 1);
            if (top.Count == 1 && top[0].Id == id) self++;
        }
        Assert.True(self >= expected.Count * 0.97, $"{self} of {expected.Count} ids find themselves");
    }
}
