using System.Text.Json;
using Funnel.Cli;
using Funnel.Tests.Inference;
using static Funnel.Tests.Cli.CliRun;

namespace Funnel.Tests.Cli;

/// <summary>funnel embed / rerank / model random, run in-process with captured output.</summary>
[Collection(ReferenceCollection.Name)]
public sealed class InferenceCommandTests(ReferenceFixture reference) : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("funnel-cli-").FullName;

    [Fact]
    public void EmbedPrintsOneArrayPerTextMatchingTheReference()
    {
        ReferenceFixture.Variant v = reference.Get("small-bi");
        string input = Path.Combine(_temp, "texts.jsonl");
        File.WriteAllLines(input, reference.Texts.Select(t => JsonSerializer.Serialize(new { text = t, id = 1 })));
        var (code, stdout, stderr) = Run("embed", "--model", v.Dir, "--input", input);
        Assert.True(code == 0, stderr);
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(reference.Texts.Length, lines.Length);
        for (int i = 0; i < lines.Length; i++)
            Assert.True(Similarity.Cosine(JsonSerializer.Deserialize<float[]>(lines[i]), v.Embeddings![i]) >= 0.99999, $"line {i}");
    }

    [Fact]
    public void EmbedTakesPlainLinesAndArguments()
    {
        string dir = reference.Get("small-bi").Dir;
        string input = Path.Combine(_temp, "texts.txt");
        File.WriteAllLines(input, ["first text", "", "second text"]);
        var fromFile = Run("embed", "-m", dir, "-i", input);
        var fromArgs = Run("embed", "-m", dir, "first text", "second text");
        Assert.Equal(0, fromFile.Code);
        Assert.Equal(fromArgs.Out, fromFile.Out);
        Assert.Equal(2, fromFile.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Theory]
    [InlineData("{\"text\": \"ok\"}\n{\"text\": oops}\n", "texts.jsonl:2: invalid JSON")]
    [InlineData("{\"text\": \"ok\"}\n\n{\"body\": \"x\"}\n", "texts.jsonl:3: expected a JSON object with a string field \"text\"")]
    public void BadInputLinesAreNamed(string content, string expected)
    {
        string input = Path.Combine(_temp, "texts.jsonl");
        File.WriteAllText(input, content);
        var (code, _, stderr) = Run("embed", "-m", reference.Get("small-bi").Dir, "-i", input);
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void MissingModelIsAUsageError()
    {
        string missing = Path.Combine(_temp, "none");
        var (code, _, stderr) = Run("embed", "-m", missing, "x");
        Assert.Equal(2, code);
        Assert.Contains(missing, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void RerankPrintsScoresInInputOrderOrTheTopK()
    {
        ReferenceFixture.Variant v = reference.Get("small-ce");
        var all = Run(["rerank", "-m", v.Dir, "-q", reference.Query, .. reference.Documents]);
        Assert.True(all.Code == 0, all.Err);
        float[] scores = JsonSerializer.Deserialize<float[]>(all.Out)!;
        Assert.Equal(v.Logits!.Length, scores.Length);
        for (int i = 0; i < scores.Length; i++) Assert.Equal(v.Logits[i], scores[i], 1e-3f);

        var top = Run(["rerank", "-m", v.Dir, "-q", reference.Query, "--top", "2", .. reference.Documents]);
        Assert.Equal(0, top.Code);
        using var doc = JsonDocument.Parse(top.Out);
        int[] expected = v.Logits.Select((s, i) => (s, i)).OrderByDescending(p => p.s).Take(2).Select(p => p.i).ToArray();
        Assert.Equal(expected, doc.RootElement.EnumerateArray().Select(e => e.GetProperty("index").GetInt32()).ToArray());
        Assert.Equal(scores[expected[0]], doc.RootElement[0].GetProperty("score").GetSingle());
    }

    [Fact]
    public void PrecisionInt8EmbedsAndRerankCloseToFp32()
    {
        ReferenceFixture.Variant bi = reference.Get("small-bi");
        var (code, stdout, stderr) = Run(["embed", "-m", bi.Dir, "--precision", "int8", .. reference.Texts]);
        Assert.True(code == 0, stderr);
        float[][] vectors = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonSerializer.Deserialize<float[]>(l)!).ToArray();
        Assert.Equal(reference.Texts.Length, vectors.Length);
        for (int i = 0; i < vectors.Length; i++)
        {
            double cosine = Similarity.Cosine(vectors[i], bi.Embeddings![i]);
            // Quantized, so not fp32's vectors, but within what int8 rounding moves them.
            Assert.True(cosine is >= 0.99 and < 0.999999, $"text {i}: cosine {cosine} to fp32");
        }

        ReferenceFixture.Variant ce = reference.Get("small-ce");
        var rerank = Run(["rerank", "-m", ce.Dir, "--precision", "int8", "-q", reference.Query, .. reference.Documents]);
        Assert.True(rerank.Code == 0, rerank.Err);
        float[] scores = JsonSerializer.Deserialize<float[]>(rerank.Out)!;
        float spread = ce.Logits!.Max() - ce.Logits!.Min();
        for (int i = 0; i < scores.Length; i++) Assert.True(Math.Abs(scores[i] - ce.Logits![i]) <= 0.05 * spread, $"pair {i}: {scores[i]} vs fp32 {ce.Logits![i]}");
    }

    [Fact]
    public void PrecisionBf16IsRefusedWithTheReason()
    {
        var (code, _, stderr) = Run("embed", "-m", reference.Get("small-bi").Dir, "--precision", "bf16", "x");
        Assert.Equal(2, code);
        Assert.Contains("bf16", stderr);
        Assert.Contains("vdpbf16ps", stderr);
        Assert.DoesNotContain("   at ", stderr);
        var unknown = Run("embed", "-m", reference.Get("small-bi").Dir, "--precision", "fp16", "x");
        Assert.NotEqual(0, unknown.Code);
        Assert.Contains("fp16", unknown.Err);
    }

    [Fact]
    public void ModelRandomWritesTheSameCheckpointAsTheReference()
    {
        ReferenceFixture.Variant v = reference.Get("small-bi-f16");
        string outDir = Path.Combine(_temp, "model");
        var (code, _, stderr) = Run("model", "random", "--like", TestPaths.SharedModel(v.Like), "--out", outDir, "--arch", "small",
            "--seed", v.Seed.ToString(), "--dtype", "f16");
        Assert.True(code == 0, stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(v.Dir, "model.safetensors")), File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(outDir, "tokenizer.json")));
    }

    public void Dispose() => Directory.Delete(_temp, recursive: true);
}

/// <summary>How embed/rerank read their texts.</summary>
public sealed class InputTextsTests
{
    [Fact]
    public void StdinJsonLinesAndPlainLines()
    {
        Assert.Equal(["a \"quoted\" text", "b"], InputTexts.Read("-", [], new StringReader("{\"text\":\"a \\\"quoted\\\" text\"}\n\n{\"text\":\"b\",\"id\":2}\n")));
        Assert.Equal(["first line", "  second line "], InputTexts.Read("-", [], new StringReader("first line\n  second line \n")));
        Assert.Equal(["x", "y"], InputTexts.Read(null, ["x", "y"], new StringReader("")));
    }

    [Fact]
    public void StdinErrorsNameTheLine()
    {
        var ex = Assert.Throws<UsageException>(() => InputTexts.Read("-", [], new StringReader("{\"text\":\"a\"}\n{\"text\":3}\n")).ToList());
        Assert.Equal("<stdin>:2: expected a JSON object with a string field \"text\"", ex.Message);
        Assert.Throws<UsageException>(() => InputTexts.Read("-", ["x"], new StringReader("")));
    }
}
