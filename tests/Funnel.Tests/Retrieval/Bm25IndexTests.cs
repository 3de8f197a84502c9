using Funnel.Retrieval.Lexical;

namespace Funnel.Tests.Retrieval;

public class Bm25IndexTests
{
    private static Bm25Index Tiny()
    {
        var index = new Bm25Index();
        index.Add("d1", "The quick brown fox");  // quick brown fox   (3 terms)
        index.Add("d2", "quick quick dog");      // quick quick dog   (3)
        index.Add("d3", "lazy dog sleeps");      // lazi dog sleep    (3)
        index.Add("d4", "fox");                  // fox               (1)  → N = 4, avgdl = 10 / 4 = 2.5
        return index;
    }

    [Fact]
    public void Scores_MatchHandComputedBm25()
    {
        var hits = Tiny().Search("foxes", 10);
        // "fox": df = 2, idf = ln(1 + (4 - 2 + 0.5) / (2 + 0.5)) = ln 2 = 0.693147.
        // d4: |d| = 1: 0.693147 · 1 / (1 + 0.9 · (0.6 + 0.4 · 1 / 2.5)) = 0.693147 / 1.684 = 0.411608
        // d1: |d| = 3: 0.693147 / (1 + 0.9 · (0.6 + 0.4 · 3 / 2.5)) = 0.693147 / 1.972 = 0.351495
        Assert.Equal(["d4", "d1"], hits.Select(h => h.DocId));
        Assert.Equal(0.411608, hits[0].Score, 1e-5);
        Assert.Equal(0.351495, hits[1].Score, 1e-5);
    }

    [Fact]
    public void RepeatedQueryTerms_CountEachTime()
    {
        var index = Tiny();
        float once = index.Search("fox", 1)[0].Score;
        Assert.Equal(2 * once, index.Search("fox fox", 1)[0].Score, 1e-5);
    }

    [Fact]
    public void EqualScores_AreOrderedByDocumentId()
    {
        var index = new Bm25Index();
        foreach (string id in new[] { "m", "b", "z", "a" }) index.Add(id, "same text");
        Assert.Equal(["a", "b", "m", "z"], index.Search("text", 10).Select(h => h.DocId));
        Assert.Equal(["a", "b"], index.Search("text", 2).Select(h => h.DocId));
    }

    [Fact]
    public void Filter_AndUnknownTerms()
    {
        var index = Tiny();
        Assert.Equal(["d1"], index.Search("fox", 10, id => id != "d4").Select(h => h.DocId));
        Assert.Empty(index.Search("unicorn the", 10));
        Assert.Empty(new Bm25Index().Search("fox", 10));
    }

    [Fact]
    public void UpdateAndRemove_KeepStatisticsExact()
    {
        var index = Tiny();
        index.Add("d2", "fox fox fox"); // replaces d2
        Assert.True(index.Remove("d3"));
        Assert.False(index.Remove("d3"));
        Assert.Equal(3, index.Count);
        Assert.False(index.Contains("d3"));

        var rebuilt = new Bm25Index();
        rebuilt.Add("d1", "The quick brown fox");
        rebuilt.Add("d2", "fox fox fox");
        rebuilt.Add("d4", "fox");
        AssertSameResults(rebuilt, index, ["fox", "quick dog", "lazy"]);
        Assert.Empty(index.Search("lazy", 10));
    }

    [Fact]
    public void RandomEdits_GiveTheSameResultsAsARebuild()
    {
        // Property: any sequence of adds, replacements and removals (enough removals to trigger compaction)
        // ends in the same index as adding the surviving documents to an empty one.
        var random = new Random(7);
        string[] vocabulary = ["apple", "banana", "cherry", "date", "elder", "fig", "grape", "honeydew", "kiwi", "lemon", "mango"];
        string RandomText() => string.Join(' ', Enumerable.Range(0, random.Next(1, 12)).Select(_ => vocabulary[random.Next(vocabulary.Length)]));
        var index = new Bm25Index();
        var truth = new Dictionary<string, string>();
        for (int step = 0; step < 6000; step++)
        {
            string id = $"doc{random.Next(2500)}";
            if (random.NextDouble() < 0.45)
            {
                Assert.Equal(truth.Remove(id), index.Remove(id));
            }
            else
            {
                string text = RandomText();
                truth[id] = text;
                index.Add(id, text);
            }
        }
        var rebuilt = new Bm25Index();
        foreach (var (id, text) in truth.OrderBy(_ => random.Next())) rebuilt.Add(id, text);
        Assert.Equal(truth.Count, index.Count);
        AssertSameResults(rebuilt, index, ["apple", "banana cherry", "kiwi kiwi lemon", "mango fig grape date"]);
    }

    [Fact]
    public void SaveAndLoad_RoundTrip()
    {
        var index = new Bm25Index(new EnglishAnalyzer(stopWords: ["brown"], stem: false), new Bm25Options(1.2f, 0.75f));
        index.Add("d1", "The quick brown fox");
        index.Add("d2", "quick quick dogs");
        index.Add("gone", "fox");
        index.Remove("gone");
        string path = Path.Combine(Path.GetTempPath(), $"funnel-bm25-{Guid.NewGuid():N}.bin");
        try
        {
            index.Save(path);
            var loaded = Bm25Index.Load(path);
            Assert.Equal(new Bm25Options(1.2f, 0.75f), loaded.Options);
            Assert.Equal(index.Analyzer.Id, loaded.Analyzer.Id);
            Assert.Equal(2, loaded.Count);
            AssertSameResults(index, loaded, ["quick", "the fox", "dogs", "brown"]);
            // The loaded index stays editable.
            loaded.Remove("d1");
            loaded.Add("d3", "fox");
            Assert.Equal(["d3"], loaded.Search("fox", 5).Select(h => h.DocId));
            Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.*"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Load_RejectsDamagedFilesWithAClearError()
    {
        string path = Path.Combine(Path.GetTempPath(), $"funnel-bm25-{Guid.NewGuid():N}.bin");
        try
        {
            Tiny().Save(path);
            byte[] good = File.ReadAllBytes(path);

            byte[] flipped = (byte[])good.Clone();
            flipped[good.Length / 2] ^= 0x40;
            File.WriteAllBytes(path, flipped);
            Assert.Contains("checksum", Assert.Throws<InvalidDataException>(() => Bm25Index.Load(path)).Message);

            File.WriteAllBytes(path, good[..(good.Length - 3)]);
            Assert.Contains(path, Assert.Throws<InvalidDataException>(() => Bm25Index.Load(path)).Message);

            File.WriteAllText(path, "definitely not an index");
            Assert.Contains("not a Funnel BM25 index", Assert.Throws<InvalidDataException>(() => Bm25Index.Load(path)).Message);

            byte[] future = (byte[])good.Clone();
            future[8] = 99;
            File.WriteAllBytes(path, future);
            Assert.Contains("version 99", Assert.Throws<InvalidDataException>(() => Bm25Index.Load(path)).Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ConcurrentSearchesAndEdits_DoNotInterfere()
    {
        var index = Tiny();
        Parallel.For(0, 200, i =>
        {
            if (i % 4 == 0) index.Add($"extra{i}", "fox and dog");
            else Assert.NotEmpty(index.Search("fox", 3));
        });
        Assert.Equal(4 + 50, index.Count);
    }

    private static void AssertSameResults(Bm25Index expected, Bm25Index actual, string[] queries)
    {
        foreach (string query in queries)
        {
            var e = expected.Search(query, 1000);
            var a = actual.Search(query, 1000);
            Assert.Equal(e.Select(h => h.DocId), a.Select(h => h.DocId));
            for (int i = 0; i < e.Count; i++) Assert.Equal(e[i].Score, a[i].Score, 1e-4);
        }
    }
}
