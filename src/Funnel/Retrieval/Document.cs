namespace Funnel.Retrieval;

/// <summary>A document of a collection. <paramref name="Id"/> is the caller's key: adding a document with an existing id replaces it.</summary>
public sealed record Document(string Id, string Title, string Text, IReadOnlyDictionary<string, string> Metadata)
{
    public static readonly IReadOnlyDictionary<string, string> NoMetadata = new Dictionary<string, string>();

    public Document(string id, string text) : this(id, "", text, NoMetadata) { }

    /// <summary>The text that is chunked and embedded, and that BM25 indexes: title and body, as BEIR evaluates them.</summary>
    public string FullText => Title.Length == 0 ? Text : Text.Length == 0 ? Title : Title + " " + Text;

    /// <summary>
    /// A metadata value as a collection stores it: a string as it is, anything else (number, boolean, array, object) as its
    /// JSON text, so nothing of a corpus's metadata is lost (BEIR's hold arrays) and a filter matches that text exactly.
    /// The one rule for every JSON reader of documents (the CLI's corpus files, the HTTP routes).
    /// </summary>
    public static string MetadataValue(System.Text.Json.JsonElement value) =>
        value.ValueKind == System.Text.Json.JsonValueKind.String ? value.GetString()! : value.GetRawText();

    /// <summary>A search query needs a word: empty and whitespace-only queries are refused the same way everywhere.</summary>
    public static string? QueryProblem(string? query) => string.IsNullOrWhiteSpace(query) ? "the query is empty (or only whitespace)" : null;
}
