using Funnel.Retrieval;
using Funnel.Retrieval.Storage;

namespace Funnel.Tests.Retrieval;

public sealed class CollectionRecordsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("funnel-docs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static StoredDocument Stored(int i) => new(
        new Document($"doc-{i}", i % 2 == 0 ? "" : $"Title {i} é", $"Body of document {i} — 東京 " + new string('x', i * 13),
            i % 3 == 0 ? Document.NoMetadata : new Dictionary<string, string> { ["lang"] = "en", ["n"] = i.ToString() }),
        [new ChunkSpan(0, 5), new ChunkSpan(3, 9 + i)],
        [i * 2L, i * 2L + 1]);

    private static void AssertSame(StoredDocument expected, StoredDocument actual)
    {
        Assert.Equal(expected.Document.Id, actual.Document.Id);
        Assert.Equal(expected.Document.Title, actual.Document.Title);
        Assert.Equal(expected.Document.Text, actual.Document.Text);
        Assert.Equal(expected.Document.Metadata.OrderBy(kv => kv.Key), actual.Document.Metadata.OrderBy(kv => kv.Key));
        Assert.Equal(expected.Chunks, actual.Chunks);
        Assert.Equal(expected.ChunkIds, actual.ChunkIds);
    }

    [Fact]
    public void BatchesRoundTrip()
    {
        var vectors = new[] { new[] { 1f, -2.5f, float.Epsilon }, new[] { 0f, 3f, -0f } };
        CollectionOperation[] batch = [new UpsertOperation(Stored(1), vectors), new DeleteOperation("gone"), new UpsertOperation(Stored(2), vectors)];
        var decoded = RecordCodec.DecodeBatch(RecordCodec.EncodeBatch(batch));
        Assert.Equal(3, decoded.Count);
        var upsert = Assert.IsType<UpsertOperation>(decoded[0]);
        AssertSame(Stored(1), upsert.Stored);
        Assert.Equal(vectors, upsert.Vectors);
        Assert.Equal("gone", Assert.IsType<DeleteOperation>(decoded[1]).DocumentId);
        AssertSame(Stored(2), Assert.IsType<UpsertOperation>(decoded[2]).Stored);
    }

    [Fact]
    public void SnapshotsRoundTrip()
    {
        string path = Path.Combine(_dir, "documents.bin");
        var documents = Enumerable.Range(0, 50).Select(Stored).ToList();
        DocumentSnapshot.Write(path, documents, nextChunkId: 1234);
        var (read, next) = DocumentSnapshot.Read(path);
        Assert.Equal(1234, next);
        Assert.Equal(documents.Count, read.Count);
        for (int i = 0; i < documents.Count; i++) AssertSame(documents[i], read[i]);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void CorruptSnapshotsAreRejectedWithTheFileName()
    {
        string path = Path.Combine(_dir, "documents.bin");
        DocumentSnapshot.Write(path, Enumerable.Range(0, 5).Select(Stored).ToList(), nextChunkId: 10);
        byte[] good = File.ReadAllBytes(path);
        var random = new Random(7);
        for (int trial = 0; trial < 60; trial++)
        {
            byte[] bad = (byte[])good.Clone();
            if (trial % 2 == 0) bad = bad[..random.Next(bad.Length)];
            else bad[random.Next(bad.Length)] ^= (byte)(1 << random.Next(8));
            File.WriteAllBytes(path, bad);
            var e = Assert.Throws<InvalidDataException>(() => DocumentSnapshot.Read(path));
            Assert.Contains(path, e.Message);
        }
    }
}
