using Funnel.Evaluation;

namespace Funnel.Tests.Evaluation;

public class BeirDatasetTests
{
    [Fact]
    public async Task Zip_OpensTheOfficialNfCorpusArchive()
    {
        using var dataset = BeirDataset.Open(Path.Combine(TestPaths.SharedDataset("beir-nfcorpus"), "nfcorpus.zip"));
        Assert.Equal("nfcorpus", dataset.Name);
        Assert.Equal(["dev", "test", "train"], dataset.Splits);
        var first = await dataset.ReadCorpusAsync().FirstAsync();
        Assert.Equal("MED-10", first.Id);
        Assert.StartsWith("Statin Use and Breast Cancer Survival", first.Title);
        Assert.StartsWith("Statin Use and Breast Cancer Survival: A Nationwide Cohort Study from Finland Recent studies", first.FullText);
        var queries = await dataset.ReadQueriesAsync();
        Assert.Equal(3237, queries.Count);
        Assert.Equal(new BeirQuery("PLAIN-3", "Breast Cancer Cells Feed on Cholesterol"), queries[0]);
        Assert.Equal(12334, dataset.ReadQrels("test").Count);
        Assert.Contains("available: dev, test, train", Assert.Throws<DatasetFormatException>(() => dataset.ReadQrels("validation")).Message);
    }

    [Fact]
    public async Task Folder_StreamsRowsAndReportsBadLines()
    {
        string dir = Directory.CreateTempSubdirectory("funnel-beir-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "qrels"));
            File.WriteAllText(Path.Combine(dir, "corpus.jsonl"),
                "{\"_id\": \"d1\", \"title\": \"T\", \"text\": \"body\", \"metadata\": {\"url\": \"u\", \"year\": 2020}}\n\n{\"_id\": \"d2\", \"text\": \"only text\"}\n{\"title\": \"no id\"}\n");
            File.WriteAllText(Path.Combine(dir, "queries.jsonl"), "{\"_id\": \"q1\", \"text\": \"hello\"}\n");
            File.WriteAllText(Path.Combine(dir, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\t1\n");
            using var dataset = BeirDataset.Open(dir);
            var docs = new List<Funnel.Retrieval.Document>();
            var e = await Assert.ThrowsAsync<InvalidDataException>(async () =>
            {
                await foreach (var doc in dataset.ReadCorpusAsync()) docs.Add(doc);
            });
            Assert.Contains("corpus.jsonl, line 4: missing \"id\"", e.Message);
            Assert.Equal(["d1", "d2"], docs.Select(d => d.Id));
            Assert.Equal("T body", docs[0].FullText);
            Assert.Equal("u", docs[0].Metadata["url"]);
            Assert.Equal("2020", docs[0].Metadata["year"]);
            Assert.Equal("only text", docs[1].FullText);
            Assert.Equal(1, dataset.ReadQrels("test")["q1"]!["d1"]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Open_MissingOrForeignInput_IsAClearError()
    {
        Assert.Contains("no such", Assert.Throws<DatasetFormatException>(() => BeirDataset.Open("/nonexistent/beir")).Message);
        string dir = Directory.CreateTempSubdirectory("funnel-beir-").FullName;
        try
        {
            Assert.Contains("no corpus.jsonl", Assert.Throws<DatasetFormatException>(() => BeirDataset.Open(dir)).Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
