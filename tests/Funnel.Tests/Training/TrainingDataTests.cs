using System.IO.Compression;
using Funnel.Evaluation;
using Funnel.Training;
using Funnel.Training.Data;
using Funnel.Training.Evaluation;

namespace Funnel.Tests.Training;

public sealed class TrainingDataTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("funnel-train-data-").FullName;

    private string File_(string name, string text)
    {
        string path = Path.Combine(_root, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void JsonLinesColumnsFollowSentenceTransformersConventions()
    {
        TrainingData d = TrainingData.ReadFile(File_("t.jsonl", """
            {"query": "q1", "docs": ["a", "b", "c"], "labels": [1, 0, 0.5]}

            {"query": "q2", "docs": ["d"], "labels": [1]}
            """));
        Assert.Equal(["query", "docs"], d.TextColumns);
        Assert.Equal("labels", d.LabelColumn);
        Assert.Equal(["q1", "a", "b", "c"], d.Examples[0].Texts);
        Assert.Equal([1f, 0f, 0.5f], d.Examples[0].Labels);
        Assert.Equal(3, d.Examples[1].Line);
        LossRequirements.Validate(TrainingLoss.ListNetLoss, ModelKind.CrossEncoder, d, teacher: false);
    }

    [Fact]
    public void CsvFollowsRfc4180AndTsvTakesQuotesLiterally()
    {
        TrainingData csv = TrainingData.ReadFile(File_("t.csv", "sentence1,sentence2,score\n\"a, b\",\"say \"\"hi\"\"\",0.5\n\"two\nlines\",x,1\n"));
        Assert.Equal(["a, b", "say \"hi\""], csv.Examples[0].Texts);
        Assert.Equal(["two\nlines", "x"], csv.Examples[1].Texts);
        Assert.Equal(3, csv.Examples[1].Line);
        Assert.Equal([1f], csv.Examples[1].Labels);
        TrainingData tsv = TrainingData.ReadFile(File_("t.tsv", "anchor\tpositive\n\"quoted\"\tit's\n"));
        Assert.Equal(["\"quoted\"", "it's"], tsv.Examples[0].Texts);
        Assert.Null(tsv.LabelColumn);
    }

    [Fact]
    public void BadRowsNameTheFileLineAndColumn()
    {
        string Error(TrainingLoss loss, ModelKind kind, string name, string text) =>
            Assert.Throws<DatasetFormatException>(() => LossRequirements.Validate(loss, kind, TrainingData.ReadFile(File_(name, text)), false)).Message;

        Assert.EndsWith("m.jsonl, line 2: MultipleNegativesRankingLoss needs (anchor, positive, negative…): this row has 1 text (anchor, positive)",
            Error(TrainingLoss.MultipleNegativesRankingLoss, ModelKind.BiEncoder, "m.jsonl", "{\"anchor\": \"a\", \"positive\": \"b\"}\n{\"anchor\": [\"a\"], \"positive\": []}\n"));
        Assert.EndsWith("e.jsonl, line 2: column 'positive': empty text",
            Error(TrainingLoss.MultipleNegativesRankingLoss, ModelKind.BiEncoder, "e.jsonl", "{\"anchor\": \"a\", \"positive\": \"b\"}\n{\"anchor\": \"a\", \"positive\": \" \"}\n"));
        Assert.EndsWith("r.csv, line 3: column 'label': 1.5 is out of range (BinaryCrossEntropyLoss takes targets in [0, 1])",
            Error(TrainingLoss.BinaryCrossEntropyLoss, ModelKind.CrossEncoder, "r.csv", "sentence1,sentence2,label\na,b,1\nc,d,1.5\n"));
        Assert.Contains("CoSENTLoss needs (sentence1, sentence2) and a score: no label column",
            Error(TrainingLoss.CoSENTLoss, ModelKind.BiEncoder, "n.tsv", "sentence1\tsentence2\na\tb\n"));
        Assert.EndsWith("c.csv, line 2: 2 fields, the header has 3 (sentence1, sentence2, score)",
            Assert.Throws<DatasetFormatException>(() => TrainingData.ReadFile(File_("c.csv", "sentence1,sentence2,score\na,b\n"))).Message);
        Assert.EndsWith("x.csv, line 2: column 'score': 'high' is not a number",
            Assert.Throws<DatasetFormatException>(() => TrainingData.ReadFile(File_("x.csv", "sentence1,sentence2,score\na,b,high\n"))).Message);
        Assert.Contains("CoSENTLoss does not train a cross-encoder",
            Assert.Throws<ArgumentException>(() => LossRequirements.Validate(TrainingLoss.CoSENTLoss, ModelKind.CrossEncoder,
                TrainingData.ReadFile(File_("ok.csv", "sentence1,sentence2,score\na,b,1\n")), false)).Message);
    }

    [Fact]
    public void RowsRoundTripThroughJsonLines()
    {
        TrainingData d = TrainingData.ReadFile(File_("rt.csv", "anchor,positive,negative,score\n\"a\",\"b, c\",\"d\"\"\",0.25\n"));
        string path = Path.Combine(_root, "rt.jsonl");
        d.WriteJsonLines(path);
        TrainingData back = TrainingData.ReadFile(path);
        Assert.Equal(d.TextColumns, back.TextColumns);
        Assert.Equal(d.Examples[0].Texts, back.Examples[0].Texts);
        Assert.Equal(d.Examples[0].Labels, back.Examples[0].Labels);
    }

    [Fact]
    public void BothOrdersFollowEachPairWithItsSwapAndRefuseOtherShapes()
    {
        TrainingData d = TrainingData.ReadFile(File_("pairs.csv", "sentence1,sentence2,score\na,b,0.5\nc,d,1\n")).WithBothOrders();
        Assert.Equal([["a", "b"], ["b", "a"], ["c", "d"], ["d", "c"]], d.Examples.Select(e => e.Texts.ToArray()));
        Assert.Equal([0.5f, 0.5f, 1f, 1f], d.Examples.Select(e => e.Labels[0]));
        Assert.Equal(["sentence1", "sentence2"], d.TextColumns);

        var triplets = TrainingData.ReadFile(File_("triplets.jsonl", """{"anchor": "q", "positive": "p", "negative": "n"}"""));
        var error = Assert.Throws<DatasetFormatException>(triplets.WithBothOrders);
        Assert.Contains("triplets.jsonl", error.Message);
        Assert.Contains("anchor, positive, negative", error.Message);
    }

    [Fact]
    public void TheStsBenchmarkScoresAreDividedByFive()
    {
        TrainingData dev = TrainingDatasets.StsBenchmark(TestPaths.SharedDataset("stsbenchmark"), "dev");
        Assert.Equal(1500, dev.Count);
        Assert.All(dev.Examples, e => Assert.InRange(e.Labels[0], 0f, 1f));
        // sts-dev.csv line 1: main-captions MSRvid 2012test 0000 5.000 "A man with a hard hat is dancing." …
        Assert.Equal(1f, dev.Examples[0].Labels[0]);
        Assert.Equal("A man with a hard hat is dancing.", dev.Examples[0].Texts[0]);
        Assert.Contains("no STS split 'valid' (sts-valid.csv; available: dev, test, train)",
            Assert.Throws<DatasetFormatException>(() => TrainingDatasets.StsBenchmark(TestPaths.SharedDataset("stsbenchmark"), "valid")).Message);
    }

    /// <summary>A tiny BEIR zip: 8 documents, 2 queries; q1 judges d1 (2), d2 (1) and d3 (0), q2 judges d5 (1).</summary>
    private string Beir()
    {
        string path = Path.Combine(_root, "tiny.zip");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Entry(string name, string text)
        {
            using var w = new StreamWriter(zip.CreateEntry("tiny/" + name).Open());
            w.Write(text);
        }
        string[] docs =
        [
            "vitamin d deficiency in winter", "low vitamin d and bone health", "vitamin d supplements dosage", "vitamin c and colds",
            "statins and muscle pain", "statin side effects in older adults", "vitamin d and statins together", "the history of the bicycle",
        ];
        Entry("corpus.jsonl", string.Concat(docs.Select((t, i) => $"{{\"_id\": \"d{i + 1}\", \"title\": \"\", \"text\": \"{t}\"}}\n")));
        Entry("queries.jsonl", "{\"_id\": \"q1\", \"text\": \"vitamin d deficiency\"}\n{\"_id\": \"q2\", \"text\": \"statin side effects\"}\n");
        Entry("qrels/train.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t1\nq1\td3\t0\nq2\td5\t1\n");
        return path;
    }

    [Fact]
    public async Task ABeirSplitGivesOnePairPerRelevantJudgment()
    {
        RetrievalSplit split = await TrainingDatasets.BeirAsync(Beir(), "train");
        Assert.Equal(["q1", "q1", "q2"], split.QueryIds);
        Assert.Equal(["d1", "d2", "d5"], split.PositiveIds);
        Assert.Equal(["vitamin d deficiency", "low vitamin d and bone health"], split.Pairs.Examples[1].Texts);
        Assert.Equal(8, split.Corpus.Count);
    }

    [Fact]
    public async Task MinedNegativesAreNeverJudgedRelevantAndRespectRankAndMargin()
    {
        RetrievalSplit split = await TrainingDatasets.BeirAsync(Beir(), "train");
        var options = new HardNegativeOptions { Count = 2, Sources = NegativeSources.Bm25, RangeMax = 5 };
        MinedNegatives mined = HardNegativeMiner.Mine(split, options, encoder: null);
        Assert.Equal(["anchor", "positive", "negative_1", "negative_2"], mined.Data.TextColumns);
        Assert.Equal(0, mined.Dropped);
        var texts = split.Corpus.ToDictionary(d => d.FullText, d => d.Id);
        foreach (var (e, q) in mined.Data.Examples.Zip(split.QueryIds))
        {
            string[] negatives = e.Texts.Skip(2).Select(t => texts[t]).ToArray();
            Assert.DoesNotContain(negatives, id => split.Qrels[q]!.TryGetValue(id, out int grade) && grade >= 1);
            if (q == "q1") Assert.DoesNotContain("d1", negatives);
        }
        // q1's BM25 ranking without its relevant d1, d2: d3 (judged 0, so a fine negative) and d7 are the best two.
        Assert.Equal(["vitamin d supplements dosage", "vitamin d and statins together"], mined.Data.Examples[0].Texts.Skip(2));
        // A margin larger than any gap leaves nothing, so every row is dropped, as mine_hard_negatives drops them.
        MinedNegatives none = HardNegativeMiner.Mine(split, options with { AbsoluteMargin = 1000 }, null);
        Assert.Equal(3, none.Dropped);
        Assert.Empty(none.Data.Examples);
        // range_min 1 skips the best candidate.
        MinedNegatives skipped = HardNegativeMiner.Mine(split, options with { RangeMin = 1, Count = 1 }, null);
        Assert.Equal(["vitamin d and statins together"], skipped.Data.Examples[0].Texts.Skip(2));
    }

    [Fact]
    public void NoDuplicatesBatchesKeepAnAnchorsRowsApart()
    {
        // 12 rows, 4 anchors × 3 positives: batches of 4 can always take 4 different anchors.
        var rows = Enumerable.Range(0, 12).Select(i => new TrainingExample([$"q{i % 4}", $"d{i}"], [])).ToList();
        int[] order = [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]; // rows 0, 4, 8 share anchor q0: every batch starts with three of one anchor
        Funnel.Training.BatchOrder.SpreadDuplicates(order, rows, 4);
        Assert.Equal(Enumerable.Range(0, 12), order.Order());
        for (int b = 0; b < 3; b++)
            Assert.Equal(4, order.Skip(4 * b).Take(4).Select(i => rows[i].Texts[0]).Distinct().Count());
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
