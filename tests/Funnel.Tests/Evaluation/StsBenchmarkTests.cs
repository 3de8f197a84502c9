using Funnel.Evaluation;

namespace Funnel.Tests.Evaluation;

/// <summary>The STS benchmark reader on hand-written lines and on the real files of ../shared.</summary>
public sealed class StsBenchmarkTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("funnel-sts-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static string Sts => TestPaths.SharedDataset("stsbenchmark");

    [Fact]
    public void Lines_split_on_tabs_only_keeping_quotes_and_dropping_source_fields()
    {
        const string text =
            "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.\tAn air plane is taking off.\r\n" +
            "\n" +
            "main-forums\tanswer-answer\t2016\t0142\t4\tThe rule - When in doubt throw it out!\tI always go by the rule \"When in doubt, throw it out!\tsource 1\tsource 2\n" +
            "main-news\theadlines\t2016\t1432\t0\tSouth Korea\tNorth Korea\n";
        var pairs = StsBenchmark.Read(new StringReader(text), "x.csv");
        Assert.Equal(
            [
                new StsPair("A plane is taking off.", "An air plane is taking off.", 5.0),
                new StsPair("The rule - When in doubt throw it out!", "I always go by the rule \"When in doubt, throw it out!", 4.0),
                new StsPair("South Korea", "North Korea", 0.0),
            ], pairs);
    }

    [Theory]
    [InlineData("main\tMSRvid\t2012\t0001\t5.000\tonly one sentence", "x.csv, line 2: expected at least 7 tab-separated fields")]
    [InlineData("main\tMSRvid\t2012\t0001\tfive\ta\tb", "x.csv, line 2: field 5 (score) 'five' is not a number")]
    [InlineData("main\tMSRvid\t2012\t0001\tNaN\ta\tb", "field 5 (score) 'NaN' is not a number")]
    public void A_malformed_line_is_named_with_what_was_expected(string line, string message)
    {
        string text = "main\tMSRvid\t2012\t0000\t1.0\ta\tb\n" + line + "\n";
        var e = Assert.Throws<DatasetFormatException>(() => StsBenchmark.Read(new StringReader(text), "x.csv"));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void The_real_splits_hold_every_pair()
    {
        Assert.Equal(["dev", "test", "train"], StsBenchmark.Splits(Sts));
        Assert.True(StsBenchmark.IsStsBenchmark(Sts));
        Assert.False(StsBenchmark.IsStsBenchmark(TestPaths.SharedDataset("beir-nfcorpus")));
        Assert.Equal(5749, StsBenchmark.ReadSplit(Sts, "train").Count);
        Assert.Equal(1500, StsBenchmark.ReadSplit(Sts, "dev").Count);
        var test = StsBenchmark.ReadSplit(Sts, "test");
        Assert.Equal(1379, test.Count);
        Assert.Equal(new StsPair("A girl is styling her hair.", "A girl is brushing her hair.", 2.5), test[0]);
        Assert.Equal(new StsPair("South Korea declares end to MERS outbreak", "North Korea Delegation Meets With South Korean Officials", 0), test[^1]);
        // A sentence with a lone quote does not swallow the lines after it.
        Assert.Contains(test, p => p.Sentence1 == "A young boy jumping into a pool that says \"no diving\".");
        Assert.All(test, p => Assert.InRange(p.Score, 0, 5));
    }

    [Fact]
    public void A_missing_split_names_those_there_are()
    {
        File.WriteAllText(Path.Combine(_temp, "sts-dev.csv"), "main\tMSRvid\t2012\t0000\t1.0\ta\tb\n");
        var e = Assert.Throws<DatasetFormatException>(() => StsBenchmark.ReadSplit(_temp, "test"));
        Assert.Contains("no STS split 'test' (sts-test.csv; available: dev)", e.Message);
    }
}
