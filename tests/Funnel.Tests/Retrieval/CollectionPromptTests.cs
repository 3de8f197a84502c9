using System.Text.Json.Nodes;
using Funnel.Inference;
using Funnel.Retrieval;
using Funnel.Tests.Inference;
using static Funnel.Tests.Inference.Similarity;

namespace Funnel.Tests.Retrieval;

/// <summary>Collections of a model with prompts: stored vectors are documents', queries are queries', and the manifest keeps both prompts.</summary>
public sealed class CollectionPromptTests(PromptModels models) : IClassFixture<PromptModels>, IDisposable
{
    private static readonly Document[] Documents =
    [
        new("berlin", "Berlin", "Berlin had a population of 3,520,031 registered inhabitants.", Document.NoMetadata),
        new("museums", "", "Berlin is well known for its museums.", Document.NoMetadata),
    ];

    private const string Query = "How many people live in Berlin?";

    private readonly string _root = Directory.CreateTempSubdirectory("funnel-prompt-collection-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private Collection Indexed(SentenceEncoder encoder, string name = "c")
    {
        var collection = Collection.Create(Path.Combine(_root, name), encoder,
            new CollectionOptions { VectorIndex = new VectorIndexSettings { Kind = VectorIndexKind.Flat } });
        CollectionIndexer.IndexAsync(collection, encoder, Documents.ToAsyncEnumerable()).GetAwaiter().GetResult();
        return collection;
    }

    [Fact]
    public async Task Dense_scores_are_query_prompt_against_document_prompt()
    {
        using Collection collection = Indexed(models.Prompted);
        var pipeline = new SearchPipeline(collection, models.Prompted);
        var options = new SearchOptions { Retriever = Retriever.Dense, Results = 2 };

        SearchResponse single = pipeline.Search(Query, options);
        var (_, many) = Assert.Single(await pipeline.SearchManyAsync([("q", Query)], options).ToListAsync());

        foreach (SearchResponse response in new[] { single, many })
        {
            Assert.Equal(2, response.Results.Count);
            foreach (SearchResult result in response.Results)
            {
                string text = Documents.Single(d => d.Id == result.DocumentId).FullText; // one chunk each
                float expected = Dot(models.ExpectedQuery(Query), models.ExpectedDocument(text));
                Assert.Equal(expected, result.DenseScore!.Value, 1e-5f);
                float withoutPrompts = Dot(models.Plain.Encode(Query), models.Plain.Encode(text));
                Assert.True(Math.Abs(withoutPrompts - expected) > 1e-3f, $"the prompts should move {result.DocumentId}'s score ({expected} vs {withoutPrompts})");
            }
        }
    }

    [Fact]
    public void The_manifest_records_the_prompts_and_the_source()
    {
        using Collection collection = Indexed(models.Prompted);

        JsonNode biEncoder = JsonNode.Parse(File.ReadAllText(Path.Combine(collection.Folder, CollectionManifest.FileName)))!["biEncoder"]!;
        Assert.Equal(PromptModels.QueryPrompt, (string?)biEncoder["queryPrompt"]);
        Assert.Equal(PromptModels.PassagePrompt, (string?)biEncoder["documentPrompt"]);
        Assert.Equal("folder", (string?)biEncoder["source"]!["kind"]);
        Assert.Equal(models.PromptedFolder, (string?)biEncoder["source"]!["id"]);
        Assert.Equal(models.Prompted.Fingerprint, CollectionManifest.Read(collection.Folder).BiEncoder);
    }

    [Fact]
    public void The_same_weights_with_other_prompts_are_refused_naming_the_prompts()
    {
        using (Collection prompted = Indexed(models.Prompted, "prompted"))
        {
            var error = Assert.Throws<BiEncoderMismatchException>(() => new SearchPipeline(prompted, models.Plain));
            Assert.Contains("has the same weights", error.Message);
            Assert.Contains($"using query prompt \"{PromptModels.QueryPrompt}\" and document prompt \"{PromptModels.PassagePrompt}\"", error.Message);
            Assert.Contains("but uses query prompt none and document prompt none", error.Message);
            Assert.Throws<BiEncoderMismatchException>(() => CollectionIndexer.Upsert(prompted, models.Plain, [Documents[0]]));
        }
        using Collection plain = Indexed(models.Plain, "plain");
        Assert.Throws<BiEncoderMismatchException>(() => new SearchPipeline(plain, models.Prompted));
        Assert.Throws<BiEncoderMismatchException>(() => Collection.OpenOrCreate(Path.Combine(_root, "prompted"), models.Plain));
    }

    [Fact]
    public void A_manifest_from_before_prompts_were_recorded_opens_as_having_none()
    {
        string folder;
        using (Collection plain = Indexed(models.Plain, "old"))
            folder = plain.Folder;
        string path = Path.Combine(folder, CollectionManifest.FileName);
        JsonNode manifest = JsonNode.Parse(File.ReadAllText(path))!;
        JsonObject biEncoder = manifest["biEncoder"]!.AsObject();
        foreach (string added in new[] { "queryPrompt", "documentPrompt", "source" }) Assert.True(biEncoder.Remove(added), added);
        File.WriteAllText(path, manifest.ToJsonString());

        using Collection old = Collection.Open(folder);

        Assert.Null(old.BiEncoder.QueryPrompt);
        Assert.Null(old.BiEncoder.DocumentPrompt);
        Assert.Null(old.BiEncoder.Source);
        Assert.Equal(2, new SearchPipeline(old, models.Plain).Search(Query, new SearchOptions { Retriever = Retriever.Dense }).Results.Count);
        var error = Assert.Throws<BiEncoderMismatchException>(() => new SearchPipeline(old, models.Prompted));
        Assert.Contains("using query prompt none and document prompt none", error.Message);
    }
}
