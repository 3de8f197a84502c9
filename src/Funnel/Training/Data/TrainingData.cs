using Funnel.Evaluation;

namespace Funnel.Training.Data;

/// <summary>One training row: its texts in column order and its labels (none, one score, or one per document).
/// <see cref="Line"/> is where it came from in a file (0 when it was built from a dataset).</summary>
public sealed record TrainingExample(IReadOnlyList<string> Texts, IReadOnlyList<float> Labels, long Line = 0);

/// <summary>
/// Training rows with sentence-transformers' column conventions: the label column is the one named
/// <c>label</c> or <c>score</c> (<c>labels</c> / <c>scores</c> for a list), every other column is a text column
/// and their order is what the loss reads (anchor, positive, negative…; sentence1, sentence2; query, document).
/// A text column may hold a list of documents (ListNet's <c>docs</c>): its texts are appended in order.
/// </summary>
public sealed class TrainingData
{
    public TrainingData(string source, IReadOnlyList<string> textColumns, string? labelColumn, IReadOnlyList<TrainingExample> examples)
    {
        Source = source;
        TextColumns = textColumns;
        LabelColumn = labelColumn;
        Examples = examples;
    }

    /// <summary>The file or dataset the rows came from, for messages.</summary>
    public string Source { get; }

    public IReadOnlyList<string> TextColumns { get; }

    public string? LabelColumn { get; }

    public IReadOnlyList<TrainingExample> Examples { get; }

    public int Count => Examples.Count;

    /// <summary>Reads JSON Lines (<c>.jsonl</c>, <c>.json</c>), CSV (<c>.csv</c>, RFC 4180 quoting) or TSV (<c>.tsv</c>,
    /// no quoting) with a header row. Errors name the file, line and column.</summary>
    public static TrainingData ReadFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: training file not found", path);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        return ext switch
        {
            ".jsonl" or ".json" or ".ndjson" => JsonLinesReader.Read(path),
            ".csv" => DelimitedReader.Read(path, ','),
            ".tsv" or ".tab" => DelimitedReader.Read(path, '\t'),
            _ => throw new DatasetFormatException(path, 0, $"unknown training file type '{ext}' (expected .jsonl, .csv or .tsv)"),
        };
    }

    /// <summary>
    /// Each two-text row followed by the same row with its texts swapped (same labels). A cross-encoder reads the pair as
    /// one sequence, so its score depends on the order; sentence-transformers' <c>training_stsbenchmark</c> trains on both
    /// orders to learn a symmetric similarity (and so sees twice the rows per epoch).
    /// </summary>
    /// <exception cref="DatasetFormatException">A row does not hold exactly two texts.</exception>
    public TrainingData WithBothOrders()
    {
        if (TextColumns.Count != 2)
            throw new DatasetFormatException(Source, 0, $"both orders need rows of two texts; the text columns are {string.Join(", ", TextColumns)}");
        var rows = new List<TrainingExample>(Examples.Count * 2);
        foreach (TrainingExample e in Examples)
        {
            if (e.Texts.Count != 2) throw new DatasetFormatException(Source, e.Line, $"both orders need two texts; this row has {e.Texts.Count}");
            rows.Add(e);
            rows.Add(e with { Texts = [e.Texts[1], e.Texts[0]] });
        }
        return new TrainingData(Source, TextColumns, LabelColumn, rows);
    }

    /// <summary>Writes the rows as JSON Lines that <see cref="ReadFile"/> reads back (a run keeps its mined data this way).</summary>
    public void WriteJsonLines(string path) => Funnel.IO.DurableFile.WriteAtomic(path, stream =>
    {
        foreach (TrainingExample e in Examples)
        {
            using (var json = new System.Text.Json.Utf8JsonWriter(stream))
            {
                json.WriteStartObject();
                for (int c = 0; c < TextColumns.Count; c++)
                {
                    bool list = c == TextColumns.Count - 1 && e.Texts.Count != TextColumns.Count;
                    if (!list)
                    {
                        json.WriteString(TextColumns[c], e.Texts[c]);
                        continue;
                    }
                    json.WriteStartArray(TextColumns[c]);
                    foreach (string t in e.Texts.Skip(c)) json.WriteStringValue(t);
                    json.WriteEndArray();
                }
                if (LabelColumn != null)
                {
                    if (LabelColumn.EndsWith('s'))
                    {
                        json.WriteStartArray(LabelColumn);
                        foreach (float l in e.Labels) json.WriteNumberValue(l);
                        json.WriteEndArray();
                    }
                    else json.WriteNumber(LabelColumn, e.Labels[0]);
                }
                json.WriteEndObject();
            }
            stream.WriteByte((byte)'\n');
        }
    });

    /// <summary>Whether <paramref name="name"/> is sentence-transformers' label column name.</summary>
    internal static bool IsLabelColumn(string name) => name is "label" or "score" or "labels" or "scores";

    /// <summary>A copy with extra text columns appended to every row (mined negatives).</summary>
    internal TrainingData WithColumns(string source, IReadOnlyList<string> extraColumns, IReadOnlyList<TrainingExample> examples) =>
        new(source, [.. TextColumns, .. extraColumns], LabelColumn, examples);
}
