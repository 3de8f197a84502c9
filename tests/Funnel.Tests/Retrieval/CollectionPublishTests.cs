using Funnel.Inference;
using Funnel.Retrieval;

namespace Funnel.Tests.Retrieval;

/// <summary>
/// A batch's vectors go into the index before the write lock and only the survivors of the batch do: a document written twice
/// (or written and deleted) in one batch leaves exactly its final chunks, live and after replaying the log.
/// </summary>
public sealed class CollectionPublishTests : IDisposable
{
    private const int Dim = 8;
    private static readonly ModelFingerprint Vectors = new("hand-made", new string('b', 64), Dim, "mean", true);
    private readonly string _dir = Path.Combine(Directory.CreateTempSubdirectory("funnel-publish-").FullName, "c");

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_dir)!, recursive: true);

    private static float[] Axis(int axis)
    {
        var v = new float[Dim];
        v[axis] = 1;
        return v;
    }

    private static EmbeddedDocument Doc(string id, string text, params int[] axes) =>
        new(new Document(id, "", text, Document.NoMetadata), [.. axes.Select(_ => new ChunkSpan(0, text.Length))], [.. axes.Select(Axis)]);

    [Theory]
    [InlineData(VectorIndexKind.Hnsw)]
    [InlineData(VectorIndexKind.Flat)]
    public async Task WritesWithinOneBatchLeaveOnlyTheFinalChunks(VectorIndexKind kind)
    {
        void Check(Collection c)
        {
            Assert.Equal(2, c.DocumentCount);
            Assert.Equal(3, c.ChunkCount);
            Assert.Equal((3, 2), c.IndexCounts()); // no vector of a replaced or deleted version stayed in the index
            Assert.Equal("a", c.SearchDense(Axis(5), 1)[0].DocumentId);
            Assert.Equal(1f, c.SearchDense(Axis(5), 1)[0].Score, 5);
            Assert.Equal(1f, c.SearchDense(Axis(6), 2)[0].Score, 5);
            Assert.DoesNotContain(c.SearchDense(Axis(0), 3), h => h.Score > 0.5f); // the first "a" and "gone" are gone
            Assert.Equal(["a"], c.SearchBm25("pears", 5).Select(h => h.DocumentId));
            Assert.Empty(c.SearchBm25("apples", 5));
            Assert.Equal(["b"], c.SearchBm25("plums", 5).Select(h => h.DocumentId));
        }
        using (Collection c = Collection.Create(_dir, Vectors, new CollectionOptions
        {
            Chunking = new ChunkingOptions { MaxTokens = 32, OverlapTokens = 4 }, VectorIndex = new VectorIndexSettings { Kind = kind },
        }))
        {
            await c.UpsertAsync([Doc("a", "apples", 0, 1), Doc("gone", "figs", 0), Doc("a", "pears", 5, 6), Doc("b", "plums", 7)]);
            Assert.Equal(1, await c.DeleteAsync(["gone", "never there"]));
            Check(c);
        }
        using (Collection reopened = Collection.Open(_dir)) Check(reopened); // the same from the log
        using (Collection c = Collection.Open(_dir))
        {
            using var cancelled = new CancellationTokenSource();
            cancelled.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.UpsertAsync([Doc("late", "late", 2)], cancelled.Token));
            Assert.Null(c.Get("late"));
        }
    }

    [Fact]
    public async Task OfConcurrentAddsOfOneIdExactlyOneIsWrittenAndARefusedBatchWritesNothing()
    {
        using (Collection c = Collection.Create(_dir, Vectors, new CollectionOptions { Chunking = new ChunkingOptions { MaxTokens = 32, OverlapTokens = 4 } }))
        {
            const int writers = 8;
            using var start = new Barrier(writers);
            Task<long>[] adds = [.. Enumerable.Range(0, writers).Select(w => Task.Run(() =>
            {
                start.SignalAndWait();
                return c.AddAsync([Doc($"own-{w}", "own", w % Dim), Doc("shared", $"writer {w}", w % Dim)]);
            }))];
            var outcomes = new List<Exception?>();
            foreach (Task<long> add in adds)
                try { await add; outcomes.Add(null); }
                catch (DocumentExistsException e) { outcomes.Add(e); }
            Assert.Single(outcomes, o => o is null);
            Assert.All(outcomes.OfType<DocumentExistsException>(), e => Assert.Equal(("shared", 1), (e.DocumentId, e.Index)));
            // The refused batches wrote nothing, not even their own new document.
            Assert.Equal(2, c.DocumentCount);
            int winner = outcomes.FindIndex(o => o is null);
            Assert.NotNull(c.Get($"own-{winner}"));
            Assert.Equal($"writer {winner}", c.Get("shared")!.Text);
        }
        using Collection reopened = Collection.Open(_dir);
        Assert.Equal(2, reopened.DocumentCount);
    }
}
