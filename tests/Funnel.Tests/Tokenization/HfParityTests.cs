using System.Text.Json;
using System.Text.Json.Nodes;
using Funnel.Tokenization;

namespace Funnel.Tests.Tokenization;

/// <summary>
/// Compares every case of Fixtures/tokenizer/hf-encodings.json, written by Hugging Face's Rust
/// tokenizer (tools/tokenizer-reference/make-fixture.js), with our output: ids, type ids and offsets.
/// </summary>
public sealed class HfParityTests
{
    private static readonly Lazy<Fixture> Reference = new(Fixture.Load);

    public static TheoryData<string> Variants => new(Reference.Value.Variants.Select(v => v.Name));

    [Theory]
    [MemberData(nameof(Variants))]
    public void TokenizerJsonMatchesHuggingFace(string variant)
    {
        FixtureVariant v = Reference.Value.Variants.Single(x => x.Name == variant);
        using var folder = new TempFolder();
        string modelDir = TestPaths.SharedModel(v.Model);
        if (v.Overrides is { } overrides)
        {
            // The same edit the generator makes: replace fields of tokenizer.json's sections.
            JsonNode json = JsonNode.Parse(File.ReadAllText(Path.Combine(modelDir, "tokenizer.json")))!;
            foreach (var (section, fields) in overrides)
            {
                if (section == "added_tokens")
                {
                    // { content: { field: value } } edits the added token with that content, or appends one.
                    JsonArray tokens = json["added_tokens"]!.AsArray();
                    foreach (var (content, edits) in fields!.AsObject())
                    {
                        JsonNode token = tokens.FirstOrDefault(t => t!["content"]!.GetValue<string>() == content) ?? AppendToken(tokens, content);
                        foreach (var (key, value) in edits!.AsObject()) token[key] = value?.DeepClone();
                    }
                    continue;
                }
                foreach (var (key, value) in fields!.AsObject()) json[section]![key] = value?.DeepClone();
            }
            File.WriteAllText(Path.Combine(folder.Path, "tokenizer.json"), json.ToJsonString());
            modelDir = folder.Path;
        }
        AssertMatches(BertTokenizer.FromFolder(modelDir), v.Cases);
    }

    private static JsonNode AppendToken(JsonArray tokens, string content)
    {
        var token = new JsonObject
        {
            ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = true, ["special"] = false,
        };
        tokens.Add(token);
        return token;
    }

    [Fact]
    public void VocabTxtFallbackMatchesHuggingFaceTokenizerJson()
    {
        FixtureVariant v = Reference.Value.Variants.Single(x => x.Name == "all-MiniLM-L6-v2");
        using var folder = new TempFolder();
        foreach (string file in new[] { "vocab.txt", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(Path.Combine(TestPaths.SharedModel(v.Model), file), Path.Combine(folder.Path, file));
        var tokenizer = BertTokenizer.FromFolder(folder.Path);
        Assert.Equal(30522, tokenizer.VocabSize);
        AssertMatches(tokenizer, v.Cases);
    }

    [Fact]
    public void FixtureCoversTheRequiredSuite()
    {
        var all = Reference.Value.Variants.SelectMany(v => v.Cases).ToList();
        Assert.True(all.Count > 1000, $"only {all.Count} cases");
        foreach (int n in new[] { 8, 16, 32, 128, 512 })
            Assert.Contains(all, c => c.Pair is not null && c.MaxLength == n && c.Ids.Length == n);
        Assert.Contains(all, c => c.Ids.Contains(100));
        Assert.Contains(all, c => c.Text.Length == 0 && c.Pair is null);
    }

    private static void AssertMatches(BertTokenizer tokenizer, IReadOnlyList<FixtureCase> cases)
    {
        var failures = new List<string>();
        foreach (FixtureCase c in cases)
        {
            Encoding e = c.Pair is null ? tokenizer.Encode(c.Text, c.MaxLength) : tokenizer.EncodePair(c.Text, c.Pair, c.MaxLength);
            int[][] offsets = e.Offsets.Select((o, i) =>
            {
                string source = e.TokenTypeIds[i] == 1 && c.Pair is not null ? c.Pair : c.Text;
                return new[] { CodePointIndex(source, o.Start), CodePointIndex(source, o.End) };
            }).ToArray();
            bool same = e.InputIds.SequenceEqual(c.Ids) && e.TokenTypeIds.SequenceEqual(c.TypeIds)
                && offsets.Length == c.Offsets.Length && offsets.Zip(c.Offsets).All(p => p.First.SequenceEqual(p.Second));
            Assert.All(e.AttentionMask, m => Assert.Equal(1, m));
            if (!same)
                failures.Add($"{Show(c.Text)}{(c.Pair is null ? "" : " | " + Show(c.Pair))} @{c.MaxLength}\n" +
                    $"    hf : {string.Join(' ', c.Ids.Zip(c.Offsets, (id, o) => $"{id}({o[0]},{o[1]})"))}\n" +
                    $"    ours: {string.Join(' ', e.InputIds.Zip(offsets, (id, o) => $"{id}({o[0]},{o[1]})"))}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} cases differ from HF:\n" + string.Join("\n", failures.Take(10)));
    }

    private static string Show(string s) => JsonSerializer.Serialize(s.Length > 80 ? s[..80] + "…" : s);

    /// <summary>HF reports offsets in code points; ours are UTF-16 indices.</summary>
    private static int CodePointIndex(string text, int utf16Index)
    {
        int count = 0;
        for (int i = 0; i < utf16Index; i++)
            if (!(char.IsLowSurrogate(text[i]) && i > 0 && char.IsHighSurrogate(text[i - 1]))) count++;
        return count;
    }

    private sealed record Fixture(IReadOnlyList<FixtureVariant> Variants)
    {
        public static Fixture Load()
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestPaths.Fixtures, "tokenizer", "hf-encodings.json")));
            var variants = doc.RootElement.GetProperty("variants").EnumerateArray().Select(v => new FixtureVariant(
                v.GetProperty("name").GetString()!,
                v.GetProperty("model").GetString()!,
                v.GetProperty("overrides").ValueKind == JsonValueKind.Null ? null
                    : JsonNode.Parse(v.GetProperty("overrides").GetRawText())!.AsObject(),
                v.GetProperty("cases").EnumerateArray().Select(c => new FixtureCase(
                    c.GetProperty("text").GetString()!,
                    c.TryGetProperty("pair", out JsonElement p) ? p.GetString() : null,
                    c.GetProperty("max_length").GetInt32(),
                    c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                    c.GetProperty("type_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                    c.GetProperty("offsets").EnumerateArray().Select(o => o.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray())).ToList()));
            return new Fixture(variants.ToList());
        }
    }

    private sealed record FixtureVariant(string Name, string Model, JsonObject? Overrides, IReadOnlyList<FixtureCase> Cases);

    private sealed record FixtureCase(string Text, string? Pair, int MaxLength, int[] Ids, int[] TypeIds, int[][] Offsets);
}
