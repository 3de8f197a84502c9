using Funnel.Inference;
using Funnel.Retrieval;

namespace Funnel.Tests.Retrieval;

/// <summary>Storage behaviour of collections with hand-made vectors: updates, deletes, recovery, checkpoints, locking, filters.</summary>
public sealed class CollectionTests : IDisposable
{
    private const int Dim = 8;
    private static readonly ModelFingerprint Vectors = new("hand-made", new string('a', 64), Dim, "mean", true);
    private readonly string _dir = Path.Combine(Directory.CreateTempSubdirectory("funnel-collection-").FullName, "c");

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_dir)!, recursive: true);

    private Collection Create(VectorIndexKind kind = VectorIndexKind.Hnsw) => Collection.Create(_dir, Vectors, new CollectionOptions
    {
        Chunking = new ChunkingOptions { MaxTokens = 32, OverlapTokens = 4 },
        VectorIndex = new VectorIndexSettings { Kind = kind },
    });

    /// <summary>Axis <paramref name="axis"/> plus a little of the next one, so that every vector is distinct.</summary>
    private static float[] Axis(int axis, float tilt = 0.1f)
    {
        var v = new float[Dim];
        v[axis % Dim] = 1;
        v[(axis + 1) % Dim] = tilt;
        return v;
    }

    private static EmbeddedDocument Doc(string id, string text, int axis, IReadOnlyDictionary<string, string>? metadata = null) =>
        new(new Document(id, "", text, metadata ?? Document.NoMetadata), [new ChunkSpan(0, text.Length)], [Axis(axis)]);

    [Theory]
    [InlineData(VectorIndexKind.Hnsw)]
    [InlineData(VectorIndexKind.Flat)]
    public void DocumentsAreSearchableByBothIndexesAndSurviveReopening(VectorIndexKind kind)
    {
        using (Collection c = Create(kind))
        {
            c.Upsert([Doc("a", "apples grow on trees", 0), Doc("b", "bananas are yellow", 1), Doc("c", "cherries are red", 2)]);
            Assert.Equal(("b", 0), (c.SearchDense(Axis(1), 1)[0].DocumentId, c.SearchDense(Axis(1), 1)[0].ChunkIndex));
            Assert.Equal("c", c.SearchBm25("red cherries", 3)[0].DocumentId);
        }
        // Reopen from the log alone (no checkpoint yet), then after a checkpoint.
        for (int round = 0; round < 2; round++)
        {
            using Collection c = Collection.Open(_dir);
            Assert.Equal(round == 0 ? 1 : 0, c.Recovery.ReplayedBatches);
            Assert.Equal(3, c.DocumentCount);
            Assert.Equal("a", c.SearchDense(Axis(0), 1)[0].DocumentId);
            Assert.Equal(["b"], c.SearchBm25("banana", 3).Select(h => h.DocumentId));
            Assert.Equal("bananas are yellow", c.Get("b")!.Text);
            c.Checkpoint();
            Assert.Equal(1, c.Manifest.Generation);
            Assert.Equal(new CollectionCounts(3, 3), c.Manifest.Counts);
        }
        Assert.Equal(["gen-000001", "wal-000001.log"], Directory.EnumerateFileSystemEntries(_dir).Select(Path.GetFileName).Where(n => n!.StartsWith("gen") || n.StartsWith("wal")).Order());
    }

    [Fact]
    public void UpsertReplacesAndDeleteRemovesFromEveryIndex()
    {
        using (Collection c = Create())
        {
            c.Upsert([Doc("a", "old words here", 0), Doc("b", "other text", 4)]);
            c.Upsert([Doc("a", "fresh content now", 2)]);
            Assert.Empty(c.SearchBm25("old", 10));
            Assert.Equal("a", c.SearchBm25("fresh", 10).Single().DocumentId);
            Assert.Equal("a", c.SearchDense(Axis(2), 1)[0].DocumentId);
            Assert.DoesNotContain(c.SearchDense(Axis(0), 2), h => h.DocumentId == "a" && h.Score > 0.5f); // the old vector is gone
            Assert.Equal(2, c.DocumentCount);
            Assert.Equal(2, c.ChunkCount);

            Assert.Equal(1, c.Delete(["b", "missing"]));
            Assert.Empty(c.SearchBm25("other", 10));
            Assert.Equal(["a"], c.SearchDense(Axis(4), 10).Select(h => h.DocumentId));
        }
        using Collection reopened = Collection.Open(_dir);
        Assert.Equal(["a"], reopened.DocumentIds());
        Assert.Equal("fresh content now", reopened.Get("a")!.Text);
        Assert.Empty(reopened.SearchBm25("old other", 10));
        Assert.Equal(1, reopened.ChunkCount);
        Assert.Equal((1, 1), reopened.IndexCounts());
    }

    [Fact]
    public void ATornLogTailIsDroppedAndEarlierBatchesKept()
    {
        using (Collection c = Create())
        {
            c.Upsert([Doc("a", "first batch", 0)]);
            c.Upsert([Doc("b", "second batch", 1)]);
        }
        string log = Collection.LogPath(_dir, 0);
        byte[] bytes = File.ReadAllBytes(log);
        File.WriteAllBytes(log, bytes[..^5]); // the second batch's record loses its end, as in a crash mid-append
        using (Collection c = Collection.Open(_dir))
        {
            Assert.Equal(1, c.Recovery.ReplayedBatches);
            Assert.True(c.Recovery.TornBytes > 0);
            Assert.Equal(["a"], c.DocumentIds());
            Assert.Empty(c.SearchBm25("second", 5));
            c.Upsert([Doc("c", "third batch", 2)]); // appends after the cut, not after the garbage
        }
        using Collection again = Collection.Open(_dir, readOnly: true);
        Assert.Equal(["a", "c"], again.DocumentIds().Order());
        Assert.Equal(0, again.Recovery.TornBytes);
    }

    [Fact]
    public void LeftoversOfAnInterruptedCheckpointAreIgnoredAndRemoved()
    {
        using (Collection c = Create()) c.Upsert([Doc("a", "kept", 0)]);
        // A checkpoint that died before its manifest commit: a half-written next generation and a temp file.
        string next = Collection.GenerationFolder(_dir, 1);
        Directory.CreateDirectory(next);
        File.WriteAllText(Path.Combine(next, "documents.bin"), "partial");
        File.WriteAllText(Path.Combine(_dir, ".manifest.json.123.tmp"), "{");
        using (Collection c = Collection.Open(_dir))
        {
            Assert.Equal(["a"], c.DocumentIds());
            Assert.False(Directory.Exists(next));
            Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
        }
    }

    [Fact]
    public void CreateFinishesAnInterruptedCreateButRefusesOtherContent()
    {
        // A create that died before writing its manifest leaves a lock file, a partial generation and a temp file.
        Directory.CreateDirectory(Path.Combine(_dir, "gen-000000"));
        File.WriteAllText(Path.Combine(_dir, "gen-000000", "documents.bin"), "partial");
        File.WriteAllText(Path.Combine(_dir, "LOCK"), "");
        File.WriteAllText(Path.Combine(_dir, ".manifest.json.1.tmp"), "{");
        using (Collection c = Create()) c.Upsert([Doc("a", "text", 0)]);
        using (Collection c = Collection.Open(_dir, readOnly: true)) Assert.Equal(["a"], c.DocumentIds());

        string other = _dir + "-other";
        Directory.CreateDirectory(other);
        File.WriteAllText(Path.Combine(other, "notes.txt"), "mine");
        var e = Assert.Throws<CollectionFolderException>(() => Collection.Create(other, Vectors, new CollectionOptions { Chunking = new ChunkingOptions() }));
        Assert.Contains("not empty", e.Message);
    }

    [Fact]
    public void OneWriterAtATimeButReadersAreFree()
    {
        using Collection writer = Create();
        writer.Upsert([Doc("a", "text", 0)]);
        var e = Assert.Throws<CollectionFolderException>(() => Collection.Open(_dir));
        Assert.Contains("another process", e.Message);
        using Collection reader = Collection.Open(_dir, readOnly: true);
        Assert.Equal(1, reader.DocumentCount);
        Assert.Throws<InvalidOperationException>(() => reader.Upsert([Doc("b", "x", 1)]));
    }

    [Fact]
    public void AnotherBiEncoderIsRefusedWithAPointerToReindex()
    {
        using Collection c = Create();
        c.EnsureBiEncoder(Vectors with { Model = "/elsewhere/same-weights" });
        var e = Assert.Throws<BiEncoderMismatchException>(() => c.EnsureBiEncoder(Vectors with { WeightsSha256 = new string('b', 64) }));
        Assert.Contains("funnel reindex", e.Message);
        Assert.Contains(_dir, e.Message);
    }

    [Fact]
    public void VectorsOfAnotherPrecisionAreRefused()
    {
        using (Collection c = Create())
        {
            var e = Assert.Throws<BiEncoderMismatchException>(() => c.EnsureBiEncoder(Vectors with { Precision = InferencePrecision.Int8 }));
            Assert.Contains("fp32", e.Message);
            Assert.Contains("int8", e.Message);
            Assert.Contains("funnel reindex", e.Message);
        }
        // The precision is recorded; a manifest written before it was reads as fp32.
        string manifest = Path.Combine(_dir, CollectionManifest.FileName);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(manifest))!;
        Assert.Equal("fp32", (string?)json["biEncoder"]!["precision"]);
        json["biEncoder"]!.AsObject().Remove("precision");
        File.WriteAllText(manifest, json.ToJsonString());
        using Collection reopened = Collection.Open(_dir);
        Assert.Equal(InferencePrecision.Fp32, reopened.BiEncoder.Precision);
        reopened.EnsureBiEncoder(Vectors);
    }

    [Fact]
    public void AnInt8CollectionRecordsItsPrecision()
    {
        var options = new CollectionOptions { Chunking = new ChunkingOptions { MaxTokens = 32, OverlapTokens = 4 } };
        using (Collection.Create(_dir, Vectors with { Precision = InferencePrecision.Int8 }, options)) { }
        using Collection reopened = Collection.Open(_dir);
        Assert.Equal(InferencePrecision.Int8, reopened.BiEncoder.Precision);
        Assert.Throws<BiEncoderMismatchException>(() => reopened.EnsureBiEncoder(Vectors));
        reopened.EnsureBiEncoder(Vectors with { Precision = InferencePrecision.Int8 });
    }

    [Fact]
    public void MetadataFiltersApplyToBothRetrievers()
    {
        using Collection c = Create();
        var en = new Dictionary<string, string> { ["lang"] = "en" };
        var de = new Dictionary<string, string> { ["lang"] = "de" };
        c.Upsert([Doc("en1", "shared word alpha", 0, en), Doc("de1", "shared word beta", 1, de), Doc("en2", "shared word gamma", 2, en)]);
        var filter = MetadataFilter.Parse(["lang=de"]);
        Assert.Equal(["de1"], c.SearchBm25("shared", 10, filter).Select(h => h.DocumentId));
        Assert.Equal(["de1"], c.SearchDense(Axis(0), 10, filter).Select(h => h.DocumentId));
        Assert.Equal(["en1", "en2"], c.SearchBm25("shared", 10, MetadataFilter.Parse(["lang=en"])).Select(h => h.DocumentId).Order());
        Assert.Empty(c.SearchDense(Axis(0), 10, MetadataFilter.Parse(["lang=fr"])));
    }

    [Fact]
    public void ChunkHitsCollapseToTheirDocumentWithTheBestChunk()
    {
        using Collection c = Create();
        string text = "part one. part two. part three.";
        // Three chunks of "long" near axis 0 (the second nearest), and a one-chunk document between them in score.
        var chunks = new[] { new ChunkSpan(0, 9), new ChunkSpan(10, 19), new ChunkSpan(20, text.Length) };
        c.Upsert([
            new EmbeddedDocument(new Document("long", text), chunks, [Axis(0, 0.3f), Axis(0, 0.05f), Axis(0, 0.2f)]),
            Doc("short", "one piece", 0),
        ]);
        var hits = c.SearchDense(Axis(0, 0f), 2);
        Assert.Equal(["long", "short"], hits.Select(h => h.DocumentId));
        Assert.Equal(1, hits[0].ChunkIndex);
        Assert.Equal("part two.", c.GetPassage("long", 1));
        Assert.Equal(4, c.ChunkCount);
    }

    [Fact]
    public void InvalidDocumentsAreRejectedBeforeAnythingIsWritten()
    {
        using Collection c = Create();
        var wrongDim = new EmbeddedDocument(new Document("x", "t"), [new ChunkSpan(0, 1)], [new float[3]]);
        Assert.Contains("3 dimensions", Assert.Throws<ArgumentException>(() => c.Upsert([Doc("ok", "fine", 0), wrongDim])).Message);
        var outside = new EmbeddedDocument(new Document("y", "t"), [new ChunkSpan(0, 5)], [Axis(0)]);
        Assert.Contains("outside", Assert.Throws<ArgumentException>(() => c.Upsert([outside])).Message);
        Assert.Equal(0, c.DocumentCount);
    }

    [Fact]
    public void OpeningSomethingElseSaysWhatIsWrong()
    {
        Directory.CreateDirectory(_dir);
        Assert.Contains("not a Funnel collection", Assert.Throws<FileNotFoundException>(() => Collection.Open(_dir)).Message);
        File.WriteAllText(Path.Combine(_dir, CollectionManifest.FileName), "{ nope");
        Assert.Contains("manifest.json", Assert.Throws<InvalidDataException>(() => Collection.Open(_dir, readOnly: true)).Message);
        Assert.Contains("does not exist", Assert.Throws<FileNotFoundException>(() => Collection.Open(_dir + "-missing", readOnly: true)).Message);
    }
}
