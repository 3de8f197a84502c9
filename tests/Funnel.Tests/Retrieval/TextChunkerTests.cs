using Funnel.Retrieval;

namespace Funnel.Tests.Retrieval;

public class TextChunkerTests
{
    /// <summary>A stand-in tokenizer with real offsets: words, single punctuation marks, and words longer than 6 chars cut into 4-char "##" pieces.</summary>
    private static List<(int Start, int End)> Tokenize(string text)
    {
        var tokens = new List<(int, int)>();
        int i = 0;
        while (i < text.Length)
        {
            if (char.IsWhiteSpace(text[i])) { i++; continue; }
            if (char.IsPunctuation(text[i])) { tokens.Add((i, i + 1)); i++; continue; }
            int start = i;
            while (i < text.Length && char.IsLetterOrDigit(text[i])) i++;
            if (i - start <= 6) tokens.Add((start, i));
            else for (int p = start; p < i; p += 4) tokens.Add((p, Math.Min(p + 4, i)));
        }
        return tokens;
    }

    [Fact]
    public void ShortTextIsOneChunkCoveringAllOfIt()
    {
        string text = "  A short text. ";
        Assert.Equal([new ChunkSpan(0, text.Length)], TextChunker.Split(text, Tokenize(text), new ChunkingOptions { MaxTokens = 8, OverlapTokens = 2 }));
    }

    [Fact]
    public void CutsAtTheSentenceEndInTheSecondHalfOfTheWindow()
    {
        // Tokens: a b c d e . f g h i j k l m   (max 8: the window a..f holds a sentence end after "." = token 6)
        string text = "a b c d e. f g h i j k l m";
        var chunks = TextChunker.Split(text, Tokenize(text), new ChunkingOptions { MaxTokens = 8, OverlapTokens = 0 });
        Assert.Equal("a b c d e.", text[chunks[0].Start..chunks[0].End]);
        Assert.Equal("f g h i j k l m", text[chunks[1].Start..chunks[1].End]);
        Assert.Equal(2, chunks.Count);
    }

    [Fact]
    public void NeverCutsInsideAWordWhenAWordBoundaryIsNear()
    {
        // "internationalization" = 5 pieces; a cut at 8 tokens would fall inside it.
        string text = "aa bb cc dd ee internationalization ff gg hh ii";
        var chunks = TextChunker.Split(text, Tokenize(text), new ChunkingOptions { MaxTokens = 8, OverlapTokens = 0 });
        Assert.Equal("aa bb cc dd ee", text[chunks[0].Start..chunks[0].End]);
        Assert.StartsWith("internationalization", text[chunks[1].Start..chunks[1].End].TrimStart());
    }

    [Theory]
    [InlineData(16, 0, 1)]
    [InlineData(16, 4, 2)]
    [InlineData(32, 8, 3)]
    [InlineData(64, 32, 4)]
    [InlineData(10, 5, 5)]
    public void ChunksRespectTheBudgetCoverEverythingAndOverlap(int maxTokens, int overlap, int seed)
    {
        var random = new Random(seed);
        string[] words = ["alpha", "be", "c", "delta", "extraordinary", "f", "gamma", "hypothesis", "i", "jo"];
        var text = new System.Text.StringBuilder();
        for (int i = 0; i < 400; i++)
        {
            text.Append(words[random.Next(words.Length)]);
            text.Append(random.Next(10) switch { 0 => ". ", 1 => ", ", 2 => "\n", _ => " " });
        }
        string s = text.ToString();
        var tokens = Tokenize(s);
        var chunks = TextChunker.Split(s, tokens, new ChunkingOptions { MaxTokens = maxTokens, OverlapTokens = overlap });

        Assert.Equal(0, chunks[0].Start);
        Assert.Equal(s.Length, chunks[^1].End);
        int previousLast = -1;
        foreach (ChunkSpan chunk in chunks)
        {
            var inside = Enumerable.Range(0, tokens.Count).Where(t => tokens[t].Start >= chunk.Start && tokens[t].End <= chunk.End).ToList();
            Assert.InRange(inside.Count, 1, maxTokens);
            // no token is cut by a chunk boundary
            Assert.DoesNotContain(tokens, t => t.Start < chunk.Start && t.End > chunk.Start);
            Assert.DoesNotContain(tokens, t => t.Start < chunk.End && t.End > chunk.End);
            // contiguous coverage with at least the requested overlap
            if (previousLast >= 0)
            {
                Assert.True(inside[0] <= previousLast + 1, "a token fell between two chunks");
                Assert.True(previousLast - inside[0] + 1 >= overlap, $"overlap {previousLast - inside[0] + 1} < {overlap}");
            }
            previousLast = inside[^1];
        }
    }

    [Fact]
    public void RejectsAnOverlapOfMoreThanHalfTheChunk()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => TextChunker.Split("x", [(0, 1)], new ChunkingOptions { MaxTokens = 10, OverlapTokens = 6 }));
        Assert.Contains("OverlapTokens", e.Message);
    }
}
