using System.Text.Json;
using MlBertTokenizer = Microsoft.ML.Tokenizers.BertTokenizer;
using MlBertOptions = Microsoft.ML.Tokenizers.BertOptions;
using FastBert = FastBertTokenizer.BertTokenizer;

namespace Funnel.Bench.Tokenizer;

/// <summary>
/// The two .NET BERT tokenizers on NuGet, in this process: Microsoft.ML.Tokenizers 2.0.1 <c>BertTokenizer</c> (from
/// vocab.txt, lower-casing and accent stripping as the model's tokenizer.json asks) and FastBertTokenizer 1.2.6 (from
/// tokenizer.json). Each encodes one text at a time with [CLS] and [SEP], untruncated, as Funnel's rows do.
/// </summary>
internal sealed class TokenizerAnchors
{
    private const int Untruncated = 1 << 16;
    private readonly MlBertTokenizer _ml;
    private readonly FastBert _fast = new();

    public TokenizerAnchors(string modelDir)
    {
        _ml = MlBertTokenizer.Create(Path.Combine(modelDir, "vocab.txt"),
            new MlBertOptions { LowerCaseBeforeTokenization = true, RemoveNonSpacingMarks = true });
        _fast.LoadTokenizerJsonAsync(Path.Combine(modelDir, "tokenizer.json")).GetAwaiter().GetResult();
    }

    public IEnumerable<(string Name, Func<string, int[]> Encode)> Implementations =>
    [
        ("Microsoft.ML.Tokenizers 2.0.1", text => [.. _ml.EncodeToIds(text, addSpecialTokens: true)]),
        // Its buffers are reused by the next call, so the ids are copied out.
        ("FastBertTokenizer 1.2.6", text => Array.ConvertAll(_fast.Encode(text, Untruncated).InputIds.ToArray(), id => (int)id)),
    ];

    /// <summary>
    /// The single-text cases of the HF fixture (Fixtures/tokenizer/hf-encodings.json, variant all-MiniLM-L6-v2) that the
    /// reference did not truncate: their ids as Hugging Face's Rust tokenizer wrote them.
    /// </summary>
    public static List<(string Text, int[] Ids)> FixtureCases(string repo)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(repo, "tests", "Funnel.Tests", "Fixtures", "tokenizer", "hf-encodings.json")));
        var variant = doc.RootElement.GetProperty("variants").EnumerateArray().First(v => v.GetProperty("name").GetString() == "all-MiniLM-L6-v2");
        var cases = new List<(string, int[])>();
        foreach (var c in variant.GetProperty("cases").EnumerateArray())
        {
            if (c.TryGetProperty("pair", out var pair) && pair.ValueKind != JsonValueKind.Null) continue;
            int[] ids = [.. c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32())];
            if (ids.Length >= c.GetProperty("max_length").GetInt32()) continue;
            cases.Add((c.GetProperty("text").GetString()!, ids));
        }
        return cases;
    }
}
