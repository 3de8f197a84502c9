using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Funnel.Inference;
using Funnel.Inference.Packaged;
using Funnel.Tokenization;

namespace Funnel.Tests.Packaged;

/// <summary>Both real packaged models, materialized once from the NuGet packages Funnel's restore downloads.</summary>
public sealed class MaterializedModels : IDisposable
{
    public string Home { get; } = Directory.CreateTempSubdirectory("funnel-packaged-").FullName;

    public MaterializedModels()
    {
        var store = new PackagedModelStore(PackagedModelOptions.FromEnvironment() with { ModelsDirectory = Path.Combine(Home, "models") });
        Folders = PackagedModels.All.ToDictionary(m => m.Id, m => store.MaterializeAsync(m).GetAwaiter().GetResult());
    }

    public IReadOnlyDictionary<string, string> Folders { get; }

    public string MiniLm => Folders[PackagedModels.AllMiniLmL6V2.Id];
    public string Arctic => Folders[PackagedModels.SnowflakeArcticEmbedXs.Id];

    public void Dispose() => Directory.Delete(Home, recursive: true);
}

/// <summary>The real packaged folders against the model contracts and the Hub's own all-MiniLM-L6-v2 files (../shared).</summary>
public sealed class RealPackagesTests(MaterializedModels models) : IClassFixture<MaterializedModels>
{
    private static string SharedMiniLm => TestPaths.SharedModel("all-MiniLM-L6-v2");

    [Fact]
    public void The_weights_and_vocabulary_are_the_catalogued_bytes()
    {
        foreach (PackagedModel model in PackagedModels.All)
        {
            string folder = models.Folders[model.Id];
            using (FileStream onnx = File.OpenRead(Path.Combine(folder, "model.onnx")))
                Assert.Equal(model.OnnxSha256, Convert.ToHexStringLower(SHA256.HashData(onnx)));
            // LF line ends restored: byte-identical to the Hub's bert-base-uncased vocab.txt.
            Assert.Equal(File.ReadAllBytes(Path.Combine(SharedMiniLm, "vocab.txt")), File.ReadAllBytes(Path.Combine(folder, "vocab.txt")));
            Assert.Equal(new ModelSource(ModelSourceKind.Package, model.Id, model.PackageId, model.PackageVersion), ModelSource.Of(folder));
        }
    }

    /// <summary>Keys the Hub's files have that say which library version wrote them or hold tokenizer call defaults (not the model).</summary>
    private static readonly string[] WriterDetails =
        ["transformers_version", "__version__", "max_length", "stride", "truncation_side", "truncation_strategy", "padding_side", "pad_to_multiple_of",
         "pad_token_type_id", "extra_special_tokens"];

    [Theory]
    [InlineData("config.json")]
    [InlineData("modules.json")]
    [InlineData("1_Pooling/config.json")]
    [InlineData("sentence_bert_config.json")]
    [InlineData("special_tokens_map.json")]
    [InlineData("tokenizer_config.json")]
    [InlineData("config_sentence_transformers.json")]
    public void MiniLm_configuration_says_what_the_Hub_files_say(string file)
    {
        JsonNode hub = WithoutWriterDetails(JsonNode.Parse(File.ReadAllText(Path.Combine(SharedMiniLm, file)))!);
        JsonNode ours = WithoutWriterDetails(JsonNode.Parse(File.ReadAllText(Path.Combine(models.MiniLm, file)))!);
        if (file == "config_sentence_transformers.json") ours.AsObject().Remove("similarity_fn_name"); // newer key; cosine is the default
        Assert.True(JsonNode.DeepEquals(hub, ours), $"{file}:\nHub:  {hub.ToJsonString()}\nours: {ours.ToJsonString()}");
    }

    private static JsonNode WithoutWriterDetails(JsonNode node)
    {
        if (node is JsonObject o) foreach (string key in WriterDetails) o.Remove(key);
        return node;
    }

    [Fact]
    public void The_contracts_of_the_model_cards_load_as_written()
    {
        var miniLm = SentenceTransformerConfig.Load(models.MiniLm);
        Assert.Equal((PoolingMode.Mean, true, 256, 0, null), (miniLm.Pooling, miniLm.Normalize, miniLm.MaxSeqLength, miniLm.Prompts.Count, miniLm.DefaultPromptName));

        var arctic = SentenceTransformerConfig.Load(models.Arctic);
        Assert.Equal((PoolingMode.Cls, true, 512, null), (arctic.Pooling, arctic.Normalize, arctic.MaxSeqLength, arctic.DefaultPromptName));
        Assert.Equal("Represent this sentence for searching relevant passages: ", Assert.Single(arctic.Prompts, p => p.Key == "query").Value);
        Assert.Single(arctic.Prompts);
        Assert.Equal(BertConfig.Load(models.MiniLm), BertConfig.Load(models.Arctic));
    }

    /// <summary>
    /// Funnel's tokenizer built from the materialized vocab.txt + tokenizer_config.json (the "slow" files) encodes every
    /// STS-B sentence and every NFCorpus document and query exactly as the Hub's tokenizer.json does.
    /// </summary>
    [Theory]
    [InlineData("sentence-transformers/all-MiniLM-L6-v2")]
    [InlineData("Snowflake/snowflake-arctic-embed-xs")]
    public async Task The_tokenizer_encodes_real_texts_as_the_Hub_tokenizer_json(string id)
    {
        BertTokenizer ours = BertTokenizer.FromFolder(models.Folders[id]);
        BertTokenizer hub = BertTokenizer.FromTokenizerJson(Path.Combine(SharedMiniLm, "tokenizer.json"));
        List<string> texts = [.. StsSentences(), .. await NfCorpusTextsAsync()];
        Assert.True(texts.Count > 20_000, $"only {texts.Count} texts");

        foreach (string text in texts)
        {
            Encoding expected = hub.Encode(text, 512), actual = ours.Encode(text, 512);
            Assert.True(expected.InputIds.SequenceEqual(actual.InputIds) && expected.TokenTypeIds.SequenceEqual(actual.TokenTypeIds)
                        && expected.Offsets.SequenceEqual(actual.Offsets), $"tokenizers differ on: {text}");
        }
    }

    private static IEnumerable<string> StsSentences() =>
        new[] { "sts-train.csv", "sts-dev.csv", "sts-test.csv" }
            .SelectMany(f => File.ReadLines(Path.Combine(TestPaths.SharedDataset("stsbenchmark"), f)))
            .Select(line => line.Split('\t'))
            .SelectMany(fields => fields[5..7]);

    private static async Task<List<string>> NfCorpusTextsAsync()
    {
        using ZipArchive zip = ZipFile.OpenRead(Path.Combine(TestPaths.SharedDataset("beir-nfcorpus"), "nfcorpus.zip"));
        var texts = new List<string>();
        foreach (string entry in new[] { "nfcorpus/corpus.jsonl", "nfcorpus/queries.jsonl" })
        {
            using var reader = new StreamReader(zip.GetEntry(entry)!.Open());
            while (await reader.ReadLineAsync() is { } line)
            {
                using JsonDocument row = JsonDocument.Parse(line);
                if (row.RootElement.TryGetProperty("title", out JsonElement title)) texts.Add(title.GetString()!);
                texts.Add(row.RootElement.GetProperty("text").GetString()!);
            }
        }
        return texts;
    }
}
