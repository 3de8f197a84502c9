using System.Text;
using Funnel.Evaluation;
using Funnel.Tokenization;

namespace Funnel.OnnxReference;

/// <summary>One fixture input: where it comes from, the text, and whether a model with a query prompt gets the prompt.</summary>
internal sealed record ParityText(string Source, string Text, bool Query);

/// <summary>
/// The fixture's texts, the same for every model: the model card sentences, tokenizer edge cases, STS-B test
/// sentences (all with non-ASCII characters, the rest spread over the token lengths), NFCorpus queries and
/// documents spread over their lengths (the longest past both models' maximum, so truncation is exercised),
/// and word runs that fill 256 and 512 tokens exactly or overflow them by one.
/// </summary>
internal static class ParityTexts
{
    /// <summary>The sentences of ASSETS.md's all-MiniLM-L6-v2 reference values, in its order.</summary>
    public static readonly string[] ModelCard = ["This is an example sentence", "Each sentence is converted.", "", "Café déjà vu — 東京"];

    private const int StsSpread = 80, QuerySpread = 30, DocumentSpread = 40;

    private static readonly string[] EdgeCases =
    [
        "Hello, world!",
        "I can't believe it's not butter!!!",
        "e-mail: john.doe@example.com; URL: https://example.com/a?b=c&d=e#f",
        "$100.00 + 50% = ???",
        "naïve façade coöperate résumé",
        "Ångström Øresund Œuvre",
        "Straße STRASSE ẞ",
        "İstanbul ıi",
        "ﬁne ﬂow (ligatures)",
        "Ελληνικά κείμενο ΆΈΉ ΣΊΣΥΦΟΣ",
        "Привет, мир! Ёлка",
        "العربية مع التشكيل: كِتَابٌ",
        "हिन्दी भाषा",
        "Tiếng Việt có dấu",
        "東京は日本の首都です。",
        "我爱北京天安门",
        "한국어 텍스트 처리",
        "日本語とEnglishのmix",
        "𠀀𠀁 CJK extension B",
        "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
        "I love it 😀👍🏽",
        "👨\u200d👩\u200d👧\u200d👦 family",
        "flags 🇫🇷🇩🇪",
        "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
        "tab\there new\nline cr\r\nlf",
        "null\0char bell\u0007char",
        "zero\u200bwidth soft\u00adhyphen bom\ufeffhere",
        "nbsp\u00a0here ideographic\u3000space",
        "  leading and trailing  ",
        "   \t\n ",
        "\u200b",
        ".",
        "a",
        new string('a', 100),
        new string('a', 101),
        "supercalifragilisticexpialidocious",
        "pneumonoultramicroscopicsilicovolcanoconiosis and floccinaucinihilipilification",
        "antidisestablishmentarianismantidisestablishmentarianismantidisestablishmentarianism",
        "!!!???...,,,;;;",
        "«quotes» „German“ ‘single’ “curly” and 'straight'",
        "…ellipsis… —em—dash–en–dash",
        "@#$%^&*()_+-=[]{}|;':\",./<>?`~",
        "¿Qué? ¡Sí!",
        "¥100 €200 £300 ₹400",
        "2024-01-15T12:30:00Z",
        "½ ¼ ² ³",
        "µ micro Ω ohm K kelvin Å angstrom",
        "hello [SEP] world",
        "[CLS][SEP][PAD][MASK][UNK]",
        "x[MASK]y",
    ];

    // Each is one token, so n of them encode to n + 2 ids.
    private static readonly string[] SingleTokenWords =
        "the river city music science history memory graph model search house water light paper story field".Split(' ');

    public static List<ParityText> Collect(string shared, BertTokenizer tokenizer)
    {
        var texts = new List<ParityText>();
        texts.AddRange(ModelCard.Select(t => new ParityText("model-card", t, Query: false)));
        texts.AddRange(EdgeCases.Select(t => new ParityText("edge-case", t, Query: false)));
        foreach (int words in new[] { 254, 255, 510, 511 })
            texts.Add(new ParityText("length", string.Join(' ', Enumerable.Range(0, words).Select(i => SingleTokenWords[i * 7 % SingleTokenWords.Length])), Query: false));

        string[] sts = File.ReadLines(Path.Combine(shared, "datasets", "stsbenchmark", "sts-test.csv"))
            .Select(l => l.Split('\t')).Where(f => f.Length >= 7).SelectMany(f => new[] { f[5], f[6] }).Distinct().ToArray();
        string[] nonAscii = sts.Where(s => s.Any(c => c > 0x7F)).ToArray();
        texts.AddRange(nonAscii.Select(t => new ParityText("stsb-test", t, Query: false)));
        texts.AddRange(SpreadOverLength(sts.Except(nonAscii), StsSpread, tokenizer).Select(t => new ParityText("stsb-test", t, Query: false)));

        using BeirDataset nfcorpus = BeirDataset.Open(Path.Combine(shared, "datasets", "beir-nfcorpus", "nfcorpus.zip"));
        IEnumerable<string> queries = nfcorpus.ReadQueriesAsync().GetAwaiter().GetResult().Select(q => q.Text);
        texts.AddRange(SpreadOverLength(queries, QuerySpread, tokenizer).Select(t => new ParityText("nfcorpus-query", t, Query: true)));
        var documents = new List<string>();
        foreach (var d in nfcorpus.ReadCorpusAsync().ToBlockingEnumerable())
            documents.Add(d.Title.Length > 0 ? d.Title + " " + d.Text : d.Text); // BEIR's title + " " + text
        texts.AddRange(SpreadOverLength(documents, DocumentSpread, tokenizer).Select(t => new ParityText("nfcorpus-doc", t, Query: false)));
        return texts;
    }

    /// <summary><paramref name="count"/> distinct texts at evenly spaced ranks of their untruncated token length,
    /// shortest and longest included (ties broken by ordinal text order, so the pick is reproducible).</summary>
    private static IEnumerable<string> SpreadOverLength(IEnumerable<string> candidates, int count, BertTokenizer tokenizer)
    {
        var sorted = candidates.Distinct().Select(t => (Text: t, Length: tokenizer.Encode(t, int.MaxValue).Length))
            .OrderBy(p => p.Length).ThenBy(p => p.Text, StringComparer.Ordinal).ToArray();
        return Enumerable.Range(0, count).Select(i => sorted[(int)((long)i * (sorted.Length - 1) / (count - 1))].Text).Distinct();
    }

    /// <summary>A short printable form for progress lines.</summary>
    public static string Preview(string text)
    {
        var sb = new StringBuilder();
        foreach (char c in text.Take(50)) sb.Append(char.IsControl(c) ? '·' : c);
        return text.Length > 50 ? sb + "…" : sb.ToString();
    }
}
