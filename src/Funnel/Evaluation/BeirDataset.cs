using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Funnel.Retrieval;

namespace Funnel.Evaluation;

public sealed record BeirQuery(string Id, string Text);

/// <summary>
/// A BEIR dataset: a folder, or a zip (as BEIR distributes them) holding <c>corpus.jsonl</c>, <c>queries.jsonl</c>
/// and <c>qrels/{split}.tsv</c>, at its root or in one subfolder (e.g. <c>nfcorpus/</c>). The corpus is streamed.
/// </summary>
public sealed class BeirDataset : IDisposable
{
    private readonly string _source;
    private readonly string? _folder;
    private readonly ZipArchive? _zip;
    private readonly string _prefix;

    private BeirDataset(string source, string? folder, ZipArchive? zip, string prefix, string name)
    {
        _source = source;
        _folder = folder;
        _zip = zip;
        _prefix = prefix;
        Name = name;
    }

    /// <summary>The dataset's name: its folder's name (e.g. <c>nfcorpus</c>).</summary>
    public string Name { get; }

    /// <summary>True when <paramref name="path"/> looks like a BEIR folder or zip (no validation of the contents).</summary>
    public static bool IsBeir(string path) =>
        (File.Exists(path) && path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase))
        || File.Exists(Path.Combine(path, "corpus.jsonl"))
        || (Directory.Exists(path) && Directory.EnumerateFiles(path, "corpus.jsonl", SearchOption.AllDirectories).Any());

    /// <summary>Opens a BEIR folder or zip; a missing file gives a <see cref="DatasetFormatException"/> naming it.</summary>
    public static BeirDataset Open(string path)
    {
        if (File.Exists(path))
        {
            ZipArchive zip;
            try
            {
                zip = ZipFile.OpenRead(path);
            }
            catch (InvalidDataException e)
            {
                throw new DatasetFormatException(path, 0, $"not a readable zip archive ({e.Message})");
            }
            var corpus = zip.Entries.Where(e => e.FullName == "corpus.jsonl" || e.FullName.EndsWith("/corpus.jsonl", StringComparison.Ordinal))
                .OrderBy(e => e.FullName.Length).FirstOrDefault();
            if (corpus == null)
            {
                zip.Dispose();
                throw new DatasetFormatException(path, 0, "the zip holds no corpus.jsonl (expected a BEIR dataset such as nfcorpus.zip)");
            }
            string prefix = corpus.FullName[..^"corpus.jsonl".Length];
            string name = prefix.Length > 0 ? Path.GetFileName(prefix.TrimEnd('/')) : Path.GetFileNameWithoutExtension(path);
            return new BeirDataset(path, null, zip, prefix, name);
        }
        if (!Directory.Exists(path)) throw new DatasetFormatException(path, 0, "no such BEIR folder or zip file");
        string? folder = File.Exists(Path.Combine(path, "corpus.jsonl"))
            ? path
            : Directory.EnumerateFiles(path, "corpus.jsonl", SearchOption.AllDirectories).Select(Path.GetDirectoryName).OrderBy(d => d!.Length).FirstOrDefault();
        if (folder == null) throw new DatasetFormatException(path, 0, "the folder holds no corpus.jsonl (expected a BEIR dataset folder)");
        return new BeirDataset(path, folder, null, "", Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar)));
    }

    /// <summary>The qrels splits present (e.g. dev, test, train).</summary>
    public IReadOnlyList<string> Splits => _zip != null
        ? _zip.Entries.Where(e => e.FullName.StartsWith(_prefix + "qrels/", StringComparison.Ordinal) && e.FullName.EndsWith(".tsv", StringComparison.Ordinal))
            .Select(e => Path.GetFileNameWithoutExtension(e.Name)).Order(StringComparer.Ordinal).ToList()
        : Directory.Exists(Path.Combine(_folder!, "qrels"))
            ? Directory.EnumerateFiles(Path.Combine(_folder!, "qrels"), "*.tsv").Select(f => Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>
    /// Streams the corpus in file order, parsed as collections parse JSONL corpora (<see cref="CorpusReader"/>): a malformed
    /// row is an <see cref="InvalidDataException"/> naming the file and line.
    /// </summary>
    public async IAsyncEnumerable<Document> ReadCorpusAsync([EnumeratorCancellation] CancellationToken ct = default)
    {
        var (reader, where) = OpenEntry("corpus.jsonl"); // opened on first MoveNext; ReadJsonlAsync disposes the stream
        await foreach (var document in CorpusReader.ReadJsonlAsync(reader.BaseStream, where, ct).ConfigureAwait(false))
            yield return document;
    }

    /// <summary>All queries, in file order.</summary>
    public async Task<IReadOnlyList<BeirQuery>> ReadQueriesAsync(CancellationToken ct = default)
    {
        var (reader, where) = OpenEntry("queries.jsonl");
        using (reader)
        {
            var queries = new List<BeirQuery>();
            long lineNumber = 0;
            while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
            {
                lineNumber++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                using var json = ParseObject(line, where, lineNumber);
                queries.Add(new BeirQuery(RequiredString(json.RootElement, "_id", where, lineNumber), OptionalString(json.RootElement, "text", where, lineNumber)));
            }
            return queries;
        }
    }

    /// <summary>The judgments of <paramref name="split"/> (<c>qrels/{split}.tsv</c>).</summary>
    public Qrels ReadQrels(string split)
    {
        if (!Splits.Contains(split))
            throw new DatasetFormatException(_source, 0, $"no qrels for split '{split}' (available: {(Splits.Count == 0 ? "none" : string.Join(", ", Splits))})");
        var (reader, where) = OpenEntry($"qrels/{split}.tsv");
        using (reader) return Qrels.ReadBeirTsv(reader, where);
    }

    private (StreamReader Reader, string Where) OpenEntry(string relative)
    {
        if (_zip != null)
        {
            string where = $"{_source}!{_prefix}{relative}";
            var entry = _zip.GetEntry(_prefix + relative) ?? throw new DatasetFormatException(_source, 0, $"the zip holds no {_prefix}{relative}");
            return (new StreamReader(entry.Open(), System.Text.Encoding.UTF8), where);
        }
        string path = Path.Combine(_folder!, relative);
        if (!File.Exists(path)) throw new DatasetFormatException(path, 0, "file not found (a BEIR dataset needs corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv)");
        return (TextFiles.OpenText(path), path);
    }

    private static JsonDocument ParseObject(string line, string where, long lineNumber)
    {
        JsonDocument json;
        try
        {
            json = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new DatasetFormatException(where, lineNumber, $"invalid JSON ({e.Message})");
        }
        if (json.RootElement.ValueKind != JsonValueKind.Object)
        {
            json.Dispose();
            throw new DatasetFormatException(where, lineNumber, "expected a JSON object");
        }
        return json;
    }

    private static string RequiredString(JsonElement row, string name, string where, long lineNumber) =>
        row.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.String or JsonValueKind.Number
            ? value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText()
            : throw new DatasetFormatException(where, lineNumber, $"missing string field \"{name}\"");

    private static string OptionalString(JsonElement row, string name, string where, long lineNumber)
    {
        if (!row.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return "";
        return value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new DatasetFormatException(where, lineNumber, $"field \"{name}\" must be a string, found {value.ValueKind}");
    }

    public void Dispose() => _zip?.Dispose();
}
