using Funnel.Inference;

namespace Funnel.Tests.Cli;

/// <summary><c>funnel train</c> and <c>funnel rerank --pairs</c> end to end on small seeded models, and their refusals
/// of bad input (exit code 2, the file, line and column named).</summary>
public sealed class TrainCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("funnel-train-cli-").FullName;
    private readonly string _bi, _ce, _pairs;

    public TrainCommandTests()
    {
        var small = new SeededCheckpointOptions { Architecture = CheckpointArchitecture.Small };
        _bi = Path.Combine(_root, "bi");
        _ce = Path.Combine(_root, "ce");
        SeededCheckpoint.Write(_bi, TestPaths.SharedModel("all-MiniLM-L6-v2"), 3, small);
        SeededCheckpoint.Write(_ce, TestPaths.SharedModel("ms-marco-MiniLM-L-6-v2"), 4, small with { CrossEncoder = true });
        _pairs = Write("pairs.jsonl", """
            {"anchor": "apple", "positive": "river"}
            {"anchor": "house", "positive": "green"}
            {"anchor": "music", "positive": "window"}
            {"anchor": "paper", "positive": "mountain"}
            """);
    }

    private string Write(string name, string text)
    {
        string path = Path.Combine(_root, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void TrainsABiEncoderAndWritesAModelFolder()
    {
        string output = Path.Combine(_root, "out");
        var (code, stdout, stderr) = CliRun.Run("train", "bi-encoder", "--base", _bi, "--out", output, "--train", _pairs, "--epochs", "3",
            "--batch-size", "2", "--lr", "1e-3", "--threads", "1");
        Assert.True(code == 0, stderr);
        Assert.Contains("steps: 6, last loss", stdout);
        Assert.Contains("GFLOP/s", stdout);
        Assert.Contains("MultipleNegativesRankingLoss, 4 rows, 2 steps per epoch, 6 steps (1 of warmup)", stderr);
        using var encoder = SentenceEncoder.Load(output);
        Assert.Equal(32, encoder.Dimension);
        Assert.True(encoder.Normalize);
        Assert.True(File.Exists(Path.Combine(output, "training", "checkpoint-0000006.safetensors")));
    }

    [Fact]
    public void MinedNegativesAreKeptAndAResumedRunReusesThem()
    {
        string output = Path.Combine(_root, "mined");
        string[] args = ["train", "bi-encoder", "--base", _bi, "--out", output, "--train", _pairs, "--negatives", "1", "--negative-range", "0:3",
            "--max-steps", "2", "--batch-size", "2", "--threads", "1"];
        var (code, _, stderr) = CliRun.Run(args);
        Assert.True(code == 0, stderr);
        Assert.Contains("1 bm25 + dense negative per row from ranks [0, 3), top: 4 rows kept, 0 dropped", stderr);
        string[] mined = File.ReadAllLines(Path.Combine(output, "training", "data.jsonl"));
        Assert.Equal(4, mined.Length);
        Assert.Contains("\"negative\":", mined[0]);
        (code, _, stderr) = CliRun.Run([.. args, "--resume"]);
        Assert.True(code == 0, stderr);
        Assert.Contains("mined negatives: reusing", stderr);
        Assert.Contains("resumed from step 2", stderr);
    }

    [Fact]
    public void TrainsACrossEncoderOnTheStsBenchmarkWithEvaluation()
    {
        string output = Path.Combine(_root, "sts");
        var (code, stdout, stderr) = CliRun.Run("train", "cross-encoder", "--base", _bi, "--out", output, "--dataset", TestPaths.SharedDataset("stsbenchmark"),
            "--max-steps", "2", "--batch-size", "4", "--eval-dataset", TestPaths.SharedDataset("stsbenchmark"), "--eval-split", "dev", "--threads", "1");
        Assert.True(code == 0, stderr);
        Assert.Contains("BinaryCrossEntropyLoss, 5,749 rows", stderr);
        Assert.Contains("step 2: Spearman, ", stderr);
        Assert.Contains("best: Spearman, ", stdout);
        using var encoder = CrossEncoder.Load(output);
        Assert.Equal(ScoreActivation.Sigmoid, encoder.Activation);
    }

    [Fact]
    public void BadTrainingDataIsRefusedWithItsLineAndColumn()
    {
        string empty = Write("empty.jsonl", "{\"anchor\": \"a\", \"positive\": \"b\"}\n{\"anchor\": \"c\", \"positive\": \"\"}\n");
        var (code, _, stderr) = CliRun.Run("train", "bi-encoder", "--base", _bi, "--out", Path.Combine(_root, "o1"), "--train", empty);
        Assert.Equal(2, code);
        Assert.Contains($"error: {empty}, line 2: column 'positive': empty text", stderr);

        string range = Write("range.csv", "sentence1,sentence2,label\na,b,0.5\nc,d,7\n");
        (code, _, stderr) = CliRun.Run("train", "cross-encoder", "--base", _ce, "--out", Path.Combine(_root, "o2"), "--train", range);
        Assert.Equal(2, code);
        Assert.Contains($"{range}, line 3: column 'label': 7 is out of range", stderr);

        string one = Write("one.jsonl", "{\"anchor\": \"a\"}\n");
        (code, _, stderr) = CliRun.Run("train", "bi-encoder", "--base", _bi, "--out", Path.Combine(_root, "o3"), "--train", one);
        Assert.Equal(2, code);
        Assert.Contains($"{one}, line 1: MultipleNegativesRankingLoss needs (anchor, positive, negative…)", stderr);
    }

    [Fact]
    public void ABaseThatIsNotBertAndAForeignOutputFolderAreRefused()
    {
        string gpt = Path.Combine(_root, "gpt");
        Directory.CreateDirectory(gpt);
        File.WriteAllText(Path.Combine(gpt, "config.json"), "{\"model_type\": \"gpt2\"}");
        var (code, _, stderr) = CliRun.Run("train", "bi-encoder", "--base", gpt, "--out", Path.Combine(_root, "o4"), "--train", _pairs);
        Assert.Equal(2, code);
        Assert.Contains("unsupported model_type \"gpt2\"", stderr);

        string foreign = Path.Combine(_root, "foreign");
        Directory.CreateDirectory(foreign);
        File.WriteAllText(Path.Combine(foreign, "keep.txt"), "x");
        (code, _, stderr) = CliRun.Run("train", "bi-encoder", "--base", _bi, "--out", foreign, "--train", _pairs);
        Assert.Equal(2, code);
        Assert.Contains($"--out {foreign} exists and is not a Funnel training run", stderr);
        Assert.True(File.Exists(Path.Combine(foreign, "keep.txt")));

        (code, _, stderr) = CliRun.Run("train", "bi-encoder", "--base", _bi, "--out", Path.Combine(_root, "o5"), "--train", _pairs, "--loss", "BinaryCrossEntropyLoss");
        Assert.Equal(2, code);
        Assert.Contains("BinaryCrossEntropyLoss does not train a bi-encoder", stderr);
        (code, _, stderr) = CliRun.Run("train", "bi-encoder", "--base", _bi, "--out", Path.Combine(_root, "o6"));
        Assert.Equal(2, code);
        Assert.Contains("either --train FILE or --dataset PATH", stderr);
    }

    [Fact]
    public void RerankPairsPrintsOneScorePerLineInOrder()
    {
        string file = Write("score.jsonl", "{\"sentence1\": \"apple\", \"sentence2\": \"river\"}\n\n{\"query\": \"house\", \"document\": \"green tree\"}\n");
        var (code, stdout, stderr) = CliRun.Run("rerank", "--model", _ce, "--pairs", file);
        Assert.True(code == 0, stderr);
        using var encoder = CrossEncoder.Load(_ce);
        float[] expected = encoder.Score([("apple", "river"), ("house", "green tree")]);
        Assert.Equal(expected.Select(s => s.ToString("R", System.Globalization.CultureInfo.InvariantCulture)), stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        string bad = Write("bad.jsonl", "{\"sentence1\": \"a\", \"sentence2\": \"b\"}\n{\"query\": \"a\"}\n");
        (code, _, stderr) = CliRun.Run("rerank", "--model", _ce, "--pairs", bad);
        Assert.Equal(2, code);
        Assert.Contains($"{bad}:2: expected a JSON object with \"sentence1\" and \"sentence2\"", stderr);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
