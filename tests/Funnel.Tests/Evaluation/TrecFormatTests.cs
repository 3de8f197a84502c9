using Funnel.Evaluation;

namespace Funnel.Tests.Evaluation;

public class TrecFormatTests
{
    [Fact]
    public void Run_WriteThenRead_RoundTripsInTrecEvalOrder()
    {
        var run = new Run("my-tag");
        run.Add("q1", "b", 1.5);
        run.Add("q1", "a", 2.25);
        run.Add("q1", "c", 1.5);
        run.Add("q2", "x", -0.1);
        string path = Path.Combine(Path.GetTempPath(), $"funnel-run-{Guid.NewGuid():N}.txt");
        try
        {
            run.WriteTrec(path);
            Assert.Equal(["q1 Q0 a 1 2.25 my-tag", "q1 Q0 c 2 1.5 my-tag", "q1 Q0 b 3 1.5 my-tag", "q2 Q0 x 1 -0.1 my-tag"], File.ReadAllLines(path));
            var read = Run.ReadTrec(path);
            Assert.Equal("my-tag", read.Tag);
            Assert.Equal(run.Ranking("q1"), read.Ranking("q1"));
            Assert.Equal(run.Ranking("q2"), read.Ranking("q2"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Run_IgnoresTheRankColumnAsTrecEvalDoes()
    {
        var run = Run.ReadTrec(new StringReader("q1 Q0 low 1 0.1 t\nq1 Q0 high 2 0.9 t\n"), "run.txt");
        Assert.Equal(["high", "low"], run.Ranking("q1").Select(d => d.DocId));
    }

    [Theory]
    [InlineData("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 abc t\n", 2, "score 'abc'")]
    [InlineData("q1 Q0 d1 1 0.5\n", 1, "expected 6 fields")]
    [InlineData("q1 Q0 d1 1 0.5 t\n\nq1 Q0 d1 2 0.4 t\n", 3, "appears twice")]
    public void Run_MalformedLines_NameFileAndLine(string text, int line, string problem)
    {
        var e = Assert.Throws<DatasetFormatException>(() => Run.ReadTrec(new StringReader(text), "run.txt"));
        Assert.Equal(line, e.Line);
        Assert.Contains(problem, e.Message);
        Assert.StartsWith($"run.txt, line {line}:", e.Message);
    }

    [Fact]
    public void Qrels_TrecAndBeirFormats()
    {
        var trec = Qrels.ReadTrec(new StringReader("19335 0 1017759 0\n19335 0 1082489 3\n2 Q0 a -1\n"), "qrels.txt");
        Assert.Equal(["19335", "2"], trec.QueryIds);
        Assert.Equal(3, trec["19335"]!["1082489"]);
        Assert.Equal(-1, trec["2"]!["a"]);
        Assert.Null(trec["nope"]);

        var beir = Qrels.ReadBeirTsv(new StringReader("query-id\tcorpus-id\tscore\nPLAIN-2\tMED-10\t2\nPLAIN-2\tMED-14\t1\n"), "test.tsv");
        Assert.Equal(2, beir.Count);
        Assert.Equal(2, beir["PLAIN-2"]!["MED-10"]);
    }

    [Theory]
    [InlineData("q 0 d 1\nq 0 d\n", 2, "expected 4 fields")]
    [InlineData("q 0 d high\n", 1, "grade 'high'")]
    [InlineData("q 0 d 1\nq 0 d 2\n", 2, "judged twice")]
    public void Qrels_MalformedLines_NameFileAndLine(string text, int line, string problem)
    {
        var e = Assert.Throws<DatasetFormatException>(() => Qrels.ReadTrec(new StringReader(text), "qrels.txt"));
        Assert.Equal(line, e.Line);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void Qrels_WriteThenRead_RoundTrips()
    {
        var qrels = Qrels.ReadTrec(new StringReader("q1 0 a 2\nq1 0 b 0\nq2 0 a 1\n"), "in");
        string path = Path.Combine(Path.GetTempPath(), $"funnel-qrels-{Guid.NewGuid():N}.txt");
        try
        {
            qrels.WriteTrec(path);
            var read = Qrels.ReadTrec(path);
            Assert.Equal(qrels.QueryIds, read.QueryIds);
            Assert.Equal(qrels["q1"], read["q1"]);
            Assert.Equal(qrels["q2"], read["q2"]);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
