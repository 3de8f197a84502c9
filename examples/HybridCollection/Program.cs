// A hybrid (dense + BM25, fused by reciprocal rank) collection through Microsoft.Extensions.VectorData: the same calls
// Semantic Kernel makes against any vector store. The collection is a Funnel collection folder on disk.
//   dotnet run --project examples/HybridCollection -- [folder]
using Funnel.Inference;
using Funnel.Retrieval.VectorData;
using Microsoft.Extensions.VectorData;

string folder = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "funnel-hybrid-example");
using SentenceEncoder encoder = await SentenceEncoder.FromPretrainedAsync("sentence-transformers/all-MiniLM-L6-v2");
using var store = new FunnelVectorStore(folder, encoder);

VectorStoreCollection<string, Note> notes = store.GetCollection<string, Note>("notes");
await notes.EnsureCollectionExistsAsync();
await notes.UpsertAsync([
    new Note { Id = "berlin", Text = "Berlin has a population of about 3.5 million.", Topic = "cities" },
    new Note { Id = "museums", Text = "Berlin is well known for its museums.", Topic = "culture" },
    new Note { Id = "tea", Text = "Green tea contains catechins.", Topic = "food" },
]);

var hybrid = (IKeywordHybridSearchable<Note>)notes;
await foreach (VectorSearchResult<Note> hit in hybrid.HybridSearchAsync("how many people live in Berlin", ["population", "Berlin"], top: 2))
    Console.WriteLine($"{hit.Score:F4}  {hit.Record.Id}: {hit.Record.Text}");

// Filters are metadata equalities joined by &&.
await foreach (VectorSearchResult<Note> hit in notes.SearchAsync("art galleries", 1, new() { Filter = n => n.Topic == "culture" }))
    Console.WriteLine($"culture: {hit.Record.Id}");

public sealed class Note
{
    [VectorStoreKey] public string Id { get; set; } = "";
    [VectorStoreData(IsFullTextIndexed = true)] public string Text { get; set; } = "";
    [VectorStoreData] public string Topic { get; set; } = "";
    [VectorStoreVector(384)] public string Embedding => Text; // embedded (and chunked) by the collection's bi-encoder
}
