using System.Text.Json.Nodes;
using Funnel.Inference;
using Funnel.Retrieval;
using Funnel.Retrieval.Storage;

namespace Funnel.Tests.Retrieval;

/// <summary>
/// Issue 11, reliability defects 1 and 2: a batch that cannot be applied is never logged, damage to acknowledged log
/// records (as opposed to a torn tail) refuses to open instead of silently dropping batches, and recovery is explicit.
/// </summary>
public sealed class CorruptionTests : IDisposable
{
    private const int Dim = 4;
    private static readonly ModelFingerprint Vectors = new("hand-made", new string('b', 64), Dim, "mean", true);
    private readonly string _dir = Path.Combine(Directory.CreateTempSubdirectory("funnel-corruption-").FullName, "c");

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_dir)!, recursive: true);

    private string Log => Collection.LogPath(_dir, 0);

    private Collection Create() => Collection.Create(_dir, Vectors, new CollectionOptions
    {
        Chunking = new ChunkingOptions { MaxTokens = 32, OverlapTokens = 4 },
        VectorIndex = new VectorIndexSettings { Kind = VectorIndexKind.Flat },
    });

    private static EmbeddedDocument Doc(string id, float first = 1) =>
        new(new Document(id, "", $"text of {id}", Document.NoMetadata), [new ChunkSpan(0, 5)], [[first, 0.5f, 0.25f, 0.125f]]);

    /// <summary>Three acknowledged batches (a, b, c) in the log, no checkpoint; returns where each record starts.</summary>
    private long[] ThreeBatches()
    {
        using (Collection c = Create())
            foreach (string id in new[] { "a", "b", "c" })
                c.Upsert([Doc(id)]);
        var lengths = new List<int>();
        WriteAheadLog.Scan(Log, 0, (_, payload) => lengths.Add(payload.Length));
        Assert.Equal(3, lengths.Count);
        var starts = new long[3];
        long position = 24;
        for (int i = 0; i < 3; i++)
        {
            starts[i] = position;
            position += 12 + lengths[i] + 4;
        }
        Assert.Equal(new FileInfo(Log).Length, position);
        return starts;
    }

    private void FlipByte(long offset)
    {
        byte[] bytes = File.ReadAllBytes(Log);
        bytes[offset] ^= 0x20;
        File.WriteAllBytes(Log, bytes);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Defect1_ANonFiniteVectorIsRefusedBeforeAnythingIsLogged(float bad)
    {
        using (Collection c = Create())
        {
            c.Upsert([Doc("good")]);
            long logLength = new FileInfo(Log).Length;
            var error = Assert.Throws<ArgumentException>(() => c.Upsert([Doc("fine"), Doc("poisoned", bad)]));
            Assert.Contains("document 'poisoned'", error.Message);
            Assert.Contains("must be finite", error.Message);
            Assert.Equal(logLength, new FileInfo(Log).Length);
            Assert.Null(c.Get("poisoned"));
            Assert.Null(c.Get("fine")); // the batch is all or nothing
            c.Upsert([Doc("later")]); // the collection still takes writes
        }
        using Collection reopened = Collection.Open(_dir);
        Assert.Equal(["good", "later"], reopened.DocumentIds().Order());
    }

    [Fact]
    public void Defect1_ALoggedBatchThatCannotBeAppliedRefusesToOpenAndRecoveryDropsOnlyIt()
    {
        ThreeBatches();
        // What an older build could leave behind: a NaN vector in a logged batch (every open then threw from the index).
        using (var log = WriteAheadLog.OpenForAppend(Log, 0, WriteAheadLog.Scan(Log, 0, (_, _) => { }), 0))
        {
            log.Append(RecordCodec.EncodeBatch([new UpsertOperation(new StoredDocument(Doc("nan").Document, [new ChunkSpan(0, 5)], [100]), [[float.NaN, 0, 0, 0]])]));
            log.Append(RecordCodec.EncodeBatch([new DeleteOperation("a")]));
        }
        var refused = Assert.Throws<CollectionCorruptException>(() => Collection.Open(_dir));
        Assert.Contains("wal-000000.log: batch 4 cannot be applied", refused.Message);
        Assert.Contains("document 'nan'", refused.Message);
        Assert.Contains("funnel collection recover", refused.Message);

        CollectionRecoveryReport report = Collection.Recover(_dir);
        Assert.Equal([4L], report.DroppedBatches);
        Assert.Empty(report.LostBatches);
        Assert.Equal(4, report.KeptBatches);
        using Collection recovered = Collection.Open(_dir);
        Assert.Equal(["b", "c"], recovered.DocumentIds().Order()); // batch 5 (delete a) still applied after the dropped one
    }

    [Fact]
    public void Defect2_AFlippedByteInAnAcknowledgedRecordFollowedByIntactOnesRefusesToOpenNamingFileAndOffset()
    {
        long[] starts = ThreeBatches();
        FlipByte(starts[1] + 20); // inside batch 2's payload
        byte[] damaged = File.ReadAllBytes(Log);

        foreach (bool readOnly in new[] { false, true })
        {
            var error = Assert.Throws<CollectionCorruptException>(() => Collection.Open(_dir, readOnly));
            Assert.Contains($"'wal-000000.log' is corrupt at byte {starts[1]}", error.Message);
            Assert.Contains($"intact records follow at byte {starts[2]}", error.Message);
            Assert.Equal(Log, error.File);
            Assert.Equal(starts[1], error.Offset);
        }
        // A refused writer truncated nothing: the acknowledged batch 3 is still there to be recovered.
        Assert.Equal(damaged, File.ReadAllBytes(Log));

        CollectionRecoveryReport report = Collection.Recover(_dir);
        Assert.Equal(2, report.KeptBatches);
        Assert.Equal([2L], report.LostBatches);
        WalDamage range = Assert.Single(report.DamagedRanges);
        Assert.Equal((starts[1], starts[2] - starts[1], (long?)1), (range.Offset, range.Length, range.AfterSequence));
        Assert.True(report.LostAnything);
        Assert.NotNull(report.DamagedLogCopy);
        Assert.Equal(damaged, File.ReadAllBytes(report.DamagedLogCopy!));

        using (Collection recovered = Collection.Open(_dir))
        {
            Assert.Equal(["a", "c"], recovered.DocumentIds().Order());
            Assert.Equal(1, recovered.Manifest.Generation);
            // Sequence numbers go on after the lost batch, never reusing it.
            Assert.Equal(4, recovered.Upsert([Doc("d")]));
        }
        using Collection again = Collection.Open(_dir);
        Assert.Equal(["a", "c", "d"], again.DocumentIds().Order());
    }

    [Fact]
    public void Defect2_OnlyATornTailIsDropped()
    {
        long[] starts = ThreeBatches();
        FlipByte(starts[2] + 20); // the last record: indistinguishable from a torn append, never acknowledged
        using (Collection c = Collection.Open(_dir))
        {
            Assert.Equal(["a", "b"], c.DocumentIds().Order());
            Assert.True(c.Recovery.TornBytes > 0);
        }
        ThreeBatchesAgainWithGarbageTail();
    }

    private void ThreeBatchesAgainWithGarbageTail()
    {
        Directory.Delete(_dir, recursive: true);
        ThreeBatches();
        using (var stream = new FileStream(Log, FileMode.Append)) stream.Write(new byte[300]); // zeroes of a half-written record
        using Collection c = Collection.Open(_dir);
        Assert.Equal(3, c.DocumentCount);
        Assert.Equal(300, c.Recovery.TornBytes);
    }

    [Fact]
    public void Defect2_AManifestWalSequencePastTheLogsEndRefusesToOpen()
    {
        ThreeBatches();
        string manifestPath = Path.Combine(_dir, CollectionManifest.FileName);
        JsonNode manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!;
        manifest["walSequence"] = 7;
        File.WriteAllText(manifestPath, manifest.ToJsonString());

        var error = Assert.Throws<CollectionCorruptException>(() => Collection.Open(_dir));
        Assert.Contains("manifest.json says its snapshot holds batches up to 7, but wal-000000.log starts at batch 1", error.Message);
        Assert.Equal(manifestPath, error.File);

        CollectionRecoveryReport report = Collection.Recover(_dir);
        Assert.NotNull(report.ManifestProblem);
        Assert.Equal(3, report.KeptBatches);
        using Collection recovered = Collection.Open(_dir);
        Assert.Equal(3, recovered.DocumentCount);
        Assert.Equal(8, recovered.Upsert([Doc("d")])); // past every sequence the manifest or the log has used
    }

    [Fact]
    public void RecoveringAnIntactCollectionLosesNothing()
    {
        ThreeBatches();
        CollectionRecoveryReport report = Collection.Recover(_dir);
        Assert.False(report.LostAnything);
        Assert.Null(report.DamagedLogCopy);
        Assert.Null(report.ManifestProblem);
        using Collection c = Collection.Open(_dir);
        Assert.Equal(3, c.DocumentCount);
    }
}
