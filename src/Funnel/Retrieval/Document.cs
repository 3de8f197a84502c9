namespace Funnel.Retrieval;

/// <summary>A document of a collection. <paramref name="Id"/> is the caller's key: adding a document with an existing id replaces it.</summary>
public sealed record Document(string Id, string Title, string Text, IReadOnlyDictionary<string, string> Metadata)
{
    public static readonly IReadOnlyDictionary<string, string> NoMetadata = new Dictionary<string, string>();

    public Document(string id, string text) : this(id, "", text, NoMetadata) { }

    /// <summary>The text that is chunked and embedded, and that BM25 indexes: title and body, as BEIR evaluates them.</summary>
    public string FullText => Title.Length == 0 ? Text : Text.Length == 0 ? Title : Title + " " + Text;
}
