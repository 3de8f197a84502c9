using Funnel.Retrieval.Lexical;

namespace Funnel.Tests.Retrieval;

public class PorterStemmerTests
{
    // Porter's (1980) worked examples and his published vocabulary/output pairs, each re-derived by hand through the
    // five steps, e.g. generalizations →(1a) generalization →(2 ization→ize) generalize →(3 alize→al) general
    // →(4 al, m=2) gener; agreed →(1b eed, m=1) agree →(5 e, m=1, "agr" not cvc) agre.
    [Theory]
    [InlineData("caresses", "caress")]
    [InlineData("ponies", "poni")]
    [InlineData("ties", "ti")]
    [InlineData("caress", "caress")]
    [InlineData("cats", "cat")]
    [InlineData("feed", "feed")]
    [InlineData("agreed", "agre")]
    [InlineData("plastered", "plaster")]
    [InlineData("bled", "bled")]
    [InlineData("motoring", "motor")]
    [InlineData("sing", "sing")]
    [InlineData("conflated", "conflat")]
    [InlineData("troubled", "troubl")]
    [InlineData("sized", "size")]
    [InlineData("hopping", "hop")]
    [InlineData("tanned", "tan")]
    [InlineData("falling", "fall")]
    [InlineData("hissing", "hiss")]
    [InlineData("fizzed", "fizz")]
    [InlineData("failing", "fail")]
    [InlineData("filing", "file")]
    [InlineData("happy", "happi")]
    [InlineData("sky", "sky")]
    [InlineData("relational", "relat")]
    [InlineData("conditional", "condit")]
    [InlineData("rational", "ration")]
    [InlineData("valenci", "valenc")]
    [InlineData("hesitanci", "hesit")]
    [InlineData("digitizer", "digit")]
    [InlineData("radicalli", "radic")]
    [InlineData("differentli", "differ")]
    [InlineData("vileli", "vile")]
    [InlineData("analogousli", "analog")]
    [InlineData("vietnamization", "vietnam")]
    [InlineData("predication", "predic")]
    [InlineData("operator", "oper")]
    [InlineData("feudalism", "feudal")]
    [InlineData("decisiveness", "decis")]
    [InlineData("hopefulness", "hope")]
    [InlineData("callousness", "callous")]
    [InlineData("formaliti", "formal")]
    [InlineData("sensitiviti", "sensit")]
    [InlineData("sensibiliti", "sensibl")]
    [InlineData("triplicate", "triplic")]
    [InlineData("formative", "form")]
    [InlineData("formalize", "formal")]
    [InlineData("electriciti", "electr")]
    [InlineData("electrical", "electr")]
    [InlineData("hopeful", "hope")]
    [InlineData("goodness", "good")]
    [InlineData("revival", "reviv")]
    [InlineData("allowance", "allow")]
    [InlineData("inference", "infer")]
    [InlineData("airliner", "airlin")]
    [InlineData("gyroscopic", "gyroscop")]
    [InlineData("adjustable", "adjust")]
    [InlineData("defensible", "defens")]
    [InlineData("irritant", "irrit")]
    [InlineData("replacement", "replac")]
    [InlineData("adjustment", "adjust")]
    [InlineData("dependent", "depend")]
    [InlineData("adoption", "adopt")]
    [InlineData("homologous", "homolog")]
    [InlineData("communism", "commun")]
    [InlineData("activate", "activ")]
    [InlineData("angulariti", "angular")]
    [InlineData("effective", "effect")]
    [InlineData("bowdlerize", "bowdler")]
    [InlineData("probate", "probat")]
    [InlineData("rate", "rate")]
    [InlineData("cease", "ceas")]
    [InlineData("controll", "control")]
    [InlineData("roll", "roll")]
    [InlineData("generalizations", "gener")]
    [InlineData("oscillators", "oscil")]
    [InlineData("university", "univers")]
    [InlineData("agreement", "agreement")] // 4: "ement" matches but m("agr") = 1, and no shorter suffix is tried
    [InlineData("are", "ar")]
    [InlineData("one", "on")]
    public void Stems_PorterVocabulary(string word, string stem) => Assert.Equal(stem, PorterStemmer.Stem(word));

    // The reference C version (and so Lucene) departs from the paper: "bli" → "ble" replaces "abli" → "able", and
    // "logi" → "log" is added; one- and two-letter words are left alone.
    [Theory]
    [InlineData("conformabli", "conform")]
    [InlineData("possibly", "possibl")]      // 1c possibli →2 bli→ble possible →5 e (m=2) possibl
    [InlineData("archaeology", "archaeolog")] // 1c archaeologi →2 logi→log
    [InlineData("is", "is")]
    [InlineData("as", "as")]
    [InlineData("s", "s")]
    public void Stems_LikeLucenesPorterStemmer(string word, string stem) => Assert.Equal(stem, PorterStemmer.Stem(word));

    [Fact]
    public void StemInPlace_AgreesWithStringVersion_AndNeverGrows()
    {
        foreach (string word in new[] { "generalizations", "hopping", "ponies", "sky", "abc", "relational" })
        {
            var buffer = word.ToCharArray();
            int length = PorterStemmer.Stem(buffer);
            Assert.InRange(length, 1, word.Length);
            Assert.Equal(PorterStemmer.Stem(word), new string(buffer, 0, length));
        }
    }
}
