using System.Text.Json;
using Funnel.Cli;
using Funnel.Tests.Tokenization;
using static Funnel.Tests.Cli.CliRun;

namespace Funnel.Tests.Cli;

/// <summary>funnel tokenize, run in-process with captured output.</summary>
public sealed class TokenizeCommandTests
{
    private static readonly string MiniLm = TestPaths.SharedModel("all-MiniLM-L6-v2");

    [Fact]
    public void PrintsThePublishedIdsAsJson()
    {
        var (code, stdout, stderr) = Run("tokenize", "--model", MiniLm, "Each sentence is converted.");
        Assert.True(code == 0, stderr);
        using JsonDocument json = JsonDocument.Parse(stdout);
        JsonElement root = json.RootElement;
        Assert.Equal([101, 2169, 6251, 2003, 4991, 1012, 102], root.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(["[CLS]", "each", "sentence", "is", "converted", ".", "[SEP]"], root.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()));
        Assert.All(root.GetProperty("attention_mask").EnumerateArray(), e => Assert.Equal(1, e.GetInt32()));
        Assert.Equal([5, 13], root.GetProperty("offsets")[2].EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public void PairIsTruncatedToMaxLength()
    {
        var (code, stdout, stderr) = Run("tokenize", "-m", MiniLm, "one two three four five six", "--pair", "seven eight nine ten eleven", "--max-length", "8");
        Assert.True(code == 0, stderr);
        using JsonDocument json = JsonDocument.Parse(stdout);
        // Budget 8 - 3 specials = 5; both sides exceed half of it, so it is split 2 / 3 with the odd
        // token going to the longer side (the first here), as HF's longest_first does.
        Assert.Equal(["[CLS]", "one", "two", "three", "[SEP]", "seven", "eight", "[SEP]"],
            json.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal([0, 0, 0, 0, 0, 1, 1, 1], json.RootElement.GetProperty("token_type_ids").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public void MissingFolderIsExitCodeTwoWithoutStackTrace()
    {
        string missing = Path.Combine(Path.GetTempPath(), "funnel-no-such-model-" + Guid.NewGuid().ToString("N"));
        var (code, stdout, stderr) = Run("tokenize", "--model", missing, "text");
        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Contains(missing, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void FolderWithoutTokenizerFilesIsNamed()
    {
        using var folder = new TempFolder();
        var (code, _, stderr) = Run("tokenize", "--model", folder.Path, "text");
        Assert.Equal(2, code);
        Assert.Contains("neither tokenizer.json nor vocab.txt", stderr);
    }

    [Fact]
    public void UnsupportedTokenizerJsonNamesFileAndField()
    {
        using var folder = new TempFolder();
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer.json"),
            """{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3}}, "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "BertPreTokenizer"}}""");
        var (code, _, stderr) = Run("tokenize", "--model", folder.Path, "text");
        Assert.Equal(2, code);
        Assert.Contains("tokenizer.json: normalizer.type: 'Lowercase' is not supported", stderr);
    }

    [Fact]
    public void TooSmallMaxLengthIsAUsageError()
    {
        var (code, _, stderr) = Run("tokenize", "-m", MiniLm, "x", "--pair", "y", "--max-length", "2");
        Assert.Equal(2, code);
        Assert.Contains("--max-length 2", stderr);
    }
}
