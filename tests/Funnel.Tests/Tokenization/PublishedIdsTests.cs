using Funnel.Tokenization;

namespace Funnel.Tests.Tokenization;

/// <summary>Token ids published for bert-base-uncased / all-MiniLM-L6-v2 (shared/ASSETS.md), asserted directly.</summary>
public sealed class PublishedIdsTests
{
    public static TheoryData<string, int[]> Sentences => new()
    {
        { "This is an example sentence", [101, 2023, 2003, 2019, 2742, 6251, 102] },
        { "Each sentence is converted.", [101, 2169, 6251, 2003, 4991, 1012, 102] },
        { "", [101, 102] },
        { "Café déjà vu — 東京", [101, 7668, 2139, 3900, 24728, 1517, 1879, 1755, 102] },
    };

    [Theory]
    [MemberData(nameof(Sentences))]
    public void TokenizerJsonGivesPublishedIds(string text, int[] expected)
    {
        var tokenizer = BertTokenizer.FromFolder(TestPaths.SharedModel("all-MiniLM-L6-v2"));
        Assert.Equal(expected, tokenizer.Encode(text).InputIds);
    }

    [Fact]
    public void PaddingToNineMatchesThePublishedPaddedRows()
    {
        var tokenizer = BertTokenizer.FromFolder(TestPaths.SharedModel("all-MiniLM-L6-v2"));
        var batch = tokenizer.Pad(Sentences.Select(row => tokenizer.Encode((string)row[0])).ToArray());
        Assert.Equal(9, batch.SequenceLength);
        Assert.Equal([101, 2023, 2003, 2019, 2742, 6251, 102, 0, 0], batch.InputIds[..9]);
        Assert.Equal([101, 102, 0, 0, 0, 0, 0, 0, 0], batch.InputIds[18..27]);
        Assert.Equal([1, 1, 0, 0, 0, 0, 0, 0, 0], batch.AttentionMask[18..27]);
        Assert.All(batch.TokenTypeIds, t => Assert.Equal(0, t));
    }
}
