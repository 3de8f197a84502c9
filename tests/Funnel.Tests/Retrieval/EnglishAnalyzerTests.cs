using Funnel.Retrieval.Lexical;

namespace Funnel.Tests.Retrieval;

public class EnglishAnalyzerTests
{
    private readonly EnglishAnalyzer _analyzer = new();

    [Theory]
    // Stop words go (the, is, a, of); possessives go before stemming (John's → john); stems: studies → studi.
    [InlineData("The study's findings: John's cat is a friend of mine", "studi find john cat friend mine")]
    // Inner periods between letters and digits stay (UAX #29 MidNumLet), trailing ones do not; commas stay inside numbers.
    [InlineData("U.S.A. e.g. 3.5 mg, 1,000 cases; v2.0", "u.s.a e.g 3.5 mg 1,000 case v2.0")]
    // Letters and digits join; hyphens and slashes split; an inner apostrophe stays (don't), underscores join.
    [InlineData("p53 X-ray caloric/dietary don't foo_bar", "p53 x rai calor dietari don't foo_bar")]
    // Accented letters are letters; each Han ideograph is its own token.
    [InlineData("Café déjà vu — 東京", "café déjà vu 東 京")]
    [InlineData("Running runners ran QUICKLY", "run runner ran quickli")]
    [InlineData("", "")]
    [InlineData("... --- !!!", "")]
    public void Analyze_MatchesLuceneEnglishAnalyzer(string text, string expected) =>
        Assert.Equal(expected, string.Join(' ', _analyzer.Analyze(text)));

    [Fact]
    public void Tokenizer_ReportsCharacterRanges()
    {
        const string text = "Hello, wörld! it's 4.5";
        var tokens = StandardTokenizer.Tokenize(text).Select(t => text.Substring(t.Start, t.Length));
        Assert.Equal(["Hello", "wörld", "it's", "4.5"], tokens);
    }

    [Fact]
    public void Tokenizer_SplitsTokensLongerThanTheMaximum()
    {
        string text = new('a', StandardTokenizer.MaxTokenLength + 10);
        Assert.Equal([(0, StandardTokenizer.MaxTokenLength), (StandardTokenizer.MaxTokenLength, 10)], StandardTokenizer.Tokenize(text));
    }

    [Fact]
    public void Options_StopWordsAndStemmingAreConfigurable()
    {
        var plain = new EnglishAnalyzer(stopWords: [], stem: false);
        Assert.Equal(["the", "running", "dogs"], plain.Analyze("The running dogs"));
        Assert.NotEqual(_analyzer.Id, plain.Id);
        Assert.Equal("english/porter/stop:lucene", _analyzer.Id);
        Assert.Equal(33, EnglishAnalyzer.LuceneStopWords.Count);
    }
}
