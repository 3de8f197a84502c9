using Funnel.Tokenization;

namespace Funnel.Tests.Tokenization;

/// <summary>Hand-checked behaviour beyond the HF fixture: truncation table, padding, errors, concurrency.</summary>
public sealed class BertTokenizerTests
{
    private static readonly Lazy<BertTokenizer> MiniLm = new(() => BertTokenizer.FromFolder(TestPaths.SharedModel("all-MiniLM-L6-v2")));

    // The expected lengths of tokenizers' own test (utils/truncation.rs, truncate_encodings_longest_first,
    // max_length 7; empty = 0, short = 2, medium = 4, long = 8 tokens).
    [Theory]
    [InlineData(0, 0, 0, 0)] [InlineData(0, 2, 0, 2)] [InlineData(0, 4, 0, 4)] [InlineData(0, 8, 0, 7)]
    [InlineData(2, 0, 2, 0)] [InlineData(2, 2, 2, 2)] [InlineData(2, 4, 2, 4)] [InlineData(2, 8, 2, 5)]
    [InlineData(4, 0, 4, 0)] [InlineData(4, 2, 4, 2)] [InlineData(4, 4, 3, 4)] [InlineData(4, 8, 3, 4)]
    [InlineData(8, 0, 7, 0)] [InlineData(8, 2, 5, 2)] [InlineData(8, 4, 4, 3)] [InlineData(8, 8, 3, 4)]
    public void LongestFirstSplitsTheBudgetLikeTokenizers(int first, int second, int keptFirst, int keptSecond)
    {
        Assert.Equal((keptFirst, keptSecond), Truncation.KeptLengths(first, second, 7, TruncationStrategy.LongestFirst));
    }

    [Fact]
    public void OnlyFirstAndOnlySecondCutOneSideOrFail()
    {
        Assert.Equal((5, 2), Truncation.KeptLengths(8, 2, 7, TruncationStrategy.OnlyFirst));
        Assert.Equal((2, 5), Truncation.KeptLengths(2, 8, 7, TruncationStrategy.OnlySecond));
        Assert.Throws<ArgumentException>(() => Truncation.KeptLengths(2, 8, 7, TruncationStrategy.OnlyFirst));
    }

    [Fact]
    public void MaxLengthMustLeaveRoomForSpecialTokens()
    {
        Assert.Equal([101, 102], MiniLm.Value.Encode("hello world", 2).InputIds);
        Assert.Equal([101, 102, 102], MiniLm.Value.EncodePair("hello", "world", 3).InputIds);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => MiniLm.Value.EncodePair("a", "b", 2));
        Assert.Contains("3", e.Message);
    }

    [Fact]
    public void PaddingFillsPadIdsAndZeroMasksOnTheConfiguredSide()
    {
        var batch = new[] { MiniLm.Value.Encode("hello world"), MiniLm.Value.Encode("hi") };
        // hello world = [101, 7592, 2088, 102]; hi = [101, 7632, 102]
        var right = Padding.ToBatch(batch, new PaddingOptions(PadId: 0, PadToMultipleOf: 3));
        Assert.Equal(6, right.SequenceLength);
        Assert.Equal([101, 7592, 2088, 102, 0, 0, 101, 7632, 102, 0, 0, 0], right.InputIds);
        Assert.Equal([1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0], right.AttentionMask);

        var left = Padding.Pad(batch, new PaddingOptions(PadId: 0, PadTypeId: 1, Side: TruncationSide.Left));
        Assert.Equal([0, 101, 7632, 102], left[1].InputIds);
        Assert.Equal([1, 0, 0, 0], left[1].TokenTypeIds);
        Assert.Equal([0, 1, 1, 1], left[1].AttentionMask);
        Assert.Equal([true, true, false, true], left[1].SpecialTokensMask);
        Assert.Same(batch[0], left[0]);

        Assert.Throws<ArgumentException>(() => Padding.ToBatch(batch, new PaddingOptions(0, FixedLength: 3)));
    }

    [Fact]
    public void ConfiguredSectionsOfTokenizerJsonAreExposed()
    {
        BertTokenizer t = MiniLm.Value;
        Assert.Equal(new TruncationOptions(128), t.ConfiguredTruncation);
        Assert.Equal(new PaddingOptions(0, 0, 128), t.ConfiguredPadding);
        Assert.Equal(512, t.ModelMaxLength);
        Assert.Equal((0, 101, 102, 100, 30522), (t.PadId, t.ClsId, t.SepId, t.UnkId, t.VocabSize));
        Assert.Equal("##ing", t.IdToToken(t.TokenToId("##ing")!.Value));
    }

    [Fact]
    public void LoneSurrogatesAreDroppedLikeReplacementCharacters()
    {
        // Rust strings cannot hold a lone surrogate; HF sees U+FFFD, which clean_text removes.
        Assert.Equal(MiniLm.Value.Encode("ab").InputIds, MiniLm.Value.Encode("a\uD800b").InputIds);
        Assert.Equal(MiniLm.Value.Encode("a b").InputIds, MiniLm.Value.Encode("a \uDC00b").InputIds);
    }

    [Fact]
    public void ConcurrentCallersGetTheSameEncodings()
    {
        string[] texts = File.ReadLines(Path.Combine(TestPaths.SharedDataset("stsbenchmark"), "sts-dev.csv"))
            .Take(400).Select(l => l.Split('\t')[5]).ToArray();
        int[][] sequential = texts.Select(t => MiniLm.Value.Encode(t).InputIds).ToArray();
        var parallel = new int[texts.Length][];
        Parallel.For(0, texts.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => parallel[i] = MiniLm.Value.Encode(texts[i]).InputIds);
        Assert.Equal(sequential, parallel);
    }

    [Fact]
    public void OffsetsPointAtTheTokensInTheOriginalText()
    {
        const string text = "Ünïcödé wörds, UPPER case!";
        Encoding e = MiniLm.Value.Encode(text);
        string[] spans = e.Offsets.Skip(1).SkipLast(1).Select(o => text[o.Start..o.End]).ToArray();
        string[] tokens = e.InputIds.Skip(1).SkipLast(1).Select(id => MiniLm.Value.IdToToken(id).Replace("##", "")).ToArray();
        Assert.Equal(tokens, spans.Select(s => RemoveDiacritics(s.ToLowerInvariant())));
    }

    [Fact]
    public void MalformedJsonNamesTheFileAndLine()
    {
        using var folder = new TempFolder();
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer.json"), "{\n  \"model\": {\n    \"vocab\": [1,\n}");
        var e = Assert.Throws<InvalidDataException>(() => BertTokenizer.FromFolder(folder.Path));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains("line 4", e.Message);
    }

    [Fact]
    public void MinimalTokenizerJsonTakesHuggingFaceDefaults()
    {
        using var folder = new TempFolder();
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer.json"),
            """{"model": {"vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3, "hello": 4, "##s": 5}}, "normalizer": {"type": "BertNormalizer"}, "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": null}""");
        BertTokenizer t = BertTokenizer.FromFolder(folder.Path);
        Assert.Equal(("[UNK]", "##", 100), t.WordPieceSettings);
        Assert.Equal(new BertNormalizer(), t.Normalizer);
        Assert.Null(t.ConfiguredTruncation);
        // No post-processor: no special tokens around the sequence.
        Assert.Equal([4, 5, 0], t.Encode("HELLOs hi").InputIds);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LongTextsNormalizedInSlicesEncodeAsAWhole(bool cleanText)
    {
        // A normalized added token (one that never occurs) makes the tokenizer normalize whole texts.
        using var folder = new TempFolder();
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.SharedModel("all-MiniLM-L6-v2"), "tokenizer.json")))!;
        json["normalizer"]!["clean_text"] = cleanText;
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer.json"), json.ToJsonString());
        json["added_tokens"]!.AsArray().Add(new System.Text.Json.Nodes.JsonObject
        {
            ["id"] = 30522, ["content"] = "qqqzzzqqq", ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = true, ["special"] = false,
        });
        Directory.CreateDirectory(Path.Combine(folder.Path, "whole"));
        File.WriteAllText(Path.Combine(folder.Path, "whole", "tokenizer.json"), json.ToJsonString());
        BertTokenizer sliced = BertTokenizer.FromFolder(folder.Path), whole = BertTokenizer.FromFolder(Path.Combine(folder.Path, "whole"));

        string[] separators = [" ", "\t", "\u000B", "\u3000", "\u200B", "\u00A0", "东京", "-", "\n\n", "\u0085"];
        // Words joined by random separators, some of which clean_text removes (joining the words) and
        // some of which split them, so the slice cuts land on every kind.
        string[] words = File.ReadLines(Path.Combine(TestPaths.SharedDataset("stsbenchmark"), "sts-train.csv")).Take(1500)
            .SelectMany(l => l.Split('\t')[5].Split(' ')).ToArray();
        var random = new Random(7);
        string text = string.Concat(words.Select(x => x + separators[random.Next(separators.Length)]));
        Assert.True(text.Length > 20 * 2048);
        foreach (int maxLength in new[] { int.MaxValue, 700, 512 })
        {
            AssertSame(whole.Encode(text, maxLength), sliced.Encode(text, maxLength));
            AssertSame(whole.EncodePair(text, text[5000..], maxLength), sliced.EncodePair(text, text[5000..], maxLength));
        }

        static void AssertSame(Encoding expected, Encoding actual)
        {
            Assert.Equal(expected.InputIds, actual.InputIds);
            Assert.Equal(expected.Offsets, actual.Offsets);
        }
    }

    [Fact]
    public void VocabularyWithoutTheSpecialTokensNamesTheFile()
    {
        using var folder = new TempFolder();
        string vocab = Path.Combine(folder.Path, "vocab.txt");
        File.WriteAllLines(vocab, ["[PAD]", "[UNK]", "hello"]);
        var e = Assert.Throws<InvalidDataException>(() => BertTokenizer.FromFolder(folder.Path));
        Assert.Equal($"{vocab}: the cls token '[CLS]' is not in the vocabulary", e.Message);
    }

    private static string RemoveDiacritics(string s) => s
        .Replace('ü', 'u').Replace('ï', 'i').Replace('ö', 'o').Replace('é', 'e');
}
