using System.Diagnostics;
using System.Text.Json;
using Funnel.Retrieval;

namespace Funnel.Tests.Retrieval;

/// <summary>
/// Kills the real <c>funnel index</c> process mid-ingest (SIGKILL, no chance to clean up), then checks the collection recovers
/// to whole batches: every document is either fully present (found by BM25 and by its vector) or absent, counts agree, and
/// running the same ingest again completes it.
/// </summary>
public sealed class CrashRecoveryTests(SmallModels models) : IClassFixture<SmallModels>, IDisposable
{
    private const int DocumentCount = 3000;
    private readonly string _dir = Directory.CreateTempSubdirectory("funnel-crash-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// Documents that each carry one made-up word no other document has, so BM25 can find exactly one. Texts repeat every
    /// 60 documents, so ~50 vectors are near-duplicates (cosine ≈ 0.9993); the <c>doc</c> metadata lets the dense check
    /// ask for one document's vector without depending on ANN recall among them.
    /// </summary>
    private string WriteCorpus()
    {
        string path = Path.Combine(_dir, "corpus.jsonl");
        using var writer = new StreamWriter(path);
        for (int i = 0; i < DocumentCount; i++)
        {
            Document source = models.Documents[i % models.Documents.Count];
            string text = $"{Marker(i)} {source.Text[..Math.Min(400, source.Text.Length)]}";
            writer.WriteLine(JsonSerializer.Serialize(new { id = $"d{i}", title = source.Title, text, metadata = new { doc = $"d{i}" } }));
        }
        return path;
    }

    /// <summary>A token no stemmer or stop list touches and no real text contains.</summary>
    private static string Marker(int i) => $"k{i:D5}k";

    private Process StartIndex(string collection, string corpus) => Cli.CliProcess.Start(new Dictionary<string, string?>(),
        "index", "--collection", collection, "--input", corpus, "--bi-encoder", models.BiEncoderPath, "--batch-size", "16");

    [Fact]
    public async Task AKilledIngestRecoversToWholeBatchesAndARerunCompletesIt()
    {
        string corpus = WriteCorpus(), collection = Path.Combine(_dir, "c");
        using (Process child = StartIndex(collection, corpus))
        {
            // Wait until it has acknowledged a few batches, then kill it without warning.
            int reports = 0;
            while (await child.StandardError.ReadLineAsync() is { } line)
                if (line.StartsWith("indexing:", StringComparison.Ordinal) && ++reports == 3) break;
            Assert.Equal(3, reports);
            child.Kill(entireProcessTree: true);
            await child.WaitForExitAsync();
        }

        using (Collection c = Collection.Open(collection))
        {
            int count = c.DocumentCount;
            Assert.InRange(count, 48, DocumentCount - 1); // at least the 3 reported batches, not everything
            Assert.Equal(0, count % 16); // whole batches only
            AssertConsistent(c);
        }

        using (Process rerun = StartIndex(collection, corpus))
        {
            string output = await rerun.StandardOutput.ReadToEndAsync();
            await rerun.WaitForExitAsync();
            Assert.True(rerun.ExitCode == 0, $"rerun failed: {await rerun.StandardError.ReadToEndAsync()}");
            Assert.Contains("unchanged", output);
        }
        using (Collection c = Collection.Open(collection, readOnly: true))
        {
            Assert.Equal(DocumentCount, c.DocumentCount);
            Assert.Equal(0, c.Recovery.ReplayedBatches); // the rerun checkpointed
            AssertConsistent(c);
        }
    }

    /// <summary>Present documents are found by their marker (BM25) and their first chunk (dense); absent ones by neither.</summary>
    private void AssertConsistent(Collection c)
    {
        var present = c.DocumentIds().ToHashSet();
        var pipeline = new SearchPipeline(c, models.BiEncoder);
        var embedder = new DocumentEmbedder(models.BiEncoder, c.Manifest.Chunking);
        int chunks = 0;
        for (int i = 0; i < DocumentCount; i++)
        {
            string id = $"d{i}";
            IReadOnlyList<DocumentHit> lexical = c.SearchBm25(Marker(i), 5);
            if (!present.Contains(id))
            {
                Assert.Empty(lexical);
                continue;
            }
            Assert.Equal([id], lexical.Select(h => h.DocumentId));
            Document d = c.Get(id)!;
            chunks += embedder.Chunk(d.FullText).Count;
            if (i % 25 != 0) continue; // dense checks are slower: sample them
            string first = c.GetPassage(id, 0)!;
            var onlyThis = new MetadataFilter([KeyValuePair.Create("doc", id)]);
            var hits = pipeline.Search(first, new SearchOptions { Retriever = Retriever.Dense, Results = 5, Rerank = false, Filter = onlyThis }).Results;
            Assert.Contains(hits, h => h.DocumentId == id && h.DenseScore > 0.9999f);
        }
        Assert.Equal(chunks, c.ChunkCount);
        Assert.Equal((chunks, present.Count), c.IndexCounts()); // the vector and BM25 indexes hold exactly the stored documents
    }
}
