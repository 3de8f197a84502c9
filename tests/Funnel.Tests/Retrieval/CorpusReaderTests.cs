using Funnel.Retrieval;

namespace Funnel.Tests.Retrieval;

public sealed class CorpusReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("funnel-corpus-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<List<Document>> ReadAll(string path)
    {
        var documents = new List<Document>();
        await foreach (Document d in CorpusReader.ReadAsync(path)) documents.Add(d);
        return documents;
    }

    [Fact]
    public async Task ReadsIdsTitlesTextAndMetadata()
    {
        string path = Path.Combine(_dir, "c.jsonl");
        File.WriteAllLines(path, [
            """{"id": "a", "title": "T", "text": "hello", "metadata": {"lang": "en", "year": 2020, "tags": ["x"]}}""",
            "",
            """{"_id": 7, "text": "no title", "title": null}""",
        ]);
        var docs = await ReadAll(path);
        Assert.Equal(2, docs.Count);
        Assert.Equal(("a", "T", "hello"), (docs[0].Id, docs[0].Title, docs[0].Text));
        Assert.Equal("en", docs[0].Metadata["lang"]);
        Assert.Equal("2020", docs[0].Metadata["year"]);
        Assert.Equal("""["x"]""", docs[0].Metadata["tags"]);
        Assert.Equal(("7", "", "no title"), (docs[1].Id, docs[1].Title, docs[1].Text));
        Assert.Empty(docs[1].Metadata);
    }

    [Theory]
    [InlineData("{\"id\": \"a\", \"text\": }", "line 2: not valid JSON")]
    [InlineData("[1, 2]", "line 2: expected a JSON object")]
    [InlineData("{\"text\": \"x\"}", "line 2: missing \"id\"")]
    [InlineData("{\"id\": \"b\"}", "line 2: document 'b': missing \"text\"")]
    [InlineData("{\"id\": \"b\", \"text\": \"x\", \"metadata\": 3}", "line 2: document 'b': \"metadata\" must be an object")]
    public async Task MalformedLinesNameTheFileAndLine(string badLine, string expected)
    {
        string path = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllLines(path, ["""{"id": "ok", "text": "fine"}""", badLine]);
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => ReadAll(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public async Task ReadsTheNfCorpusBeirZip()
    {
        var docs = await ReadAll(Path.Combine(TestPaths.SharedDataset("beir-nfcorpus"), "nfcorpus.zip"));
        Assert.Equal(3633, docs.Count);
        Assert.Equal(docs.Count, docs.Select(d => d.Id).Distinct().Count());
        Assert.All(docs, d => Assert.False(string.IsNullOrEmpty(d.Text)));
    }

    [Fact]
    public async Task ReadsABeirFolderAndRejectsAFolderWithoutACorpus()
    {
        File.WriteAllText(Path.Combine(_dir, "corpus.jsonl"), """{"_id": "d1", "title": "", "text": "x"}""" + "\n");
        Assert.Single(await ReadAll(_dir));
        string empty = Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName;
        var e = await Assert.ThrowsAsync<Funnel.Evaluation.DatasetFormatException>(() => ReadAll(empty));
        Assert.Contains("corpus.jsonl", e.Message);
        await Assert.ThrowsAsync<FileNotFoundException>(() => ReadAll(Path.Combine(_dir, "missing.jsonl")));
    }
}
