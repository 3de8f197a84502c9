using System.Globalization;
using System.Text.Json;
using Funnel.Evaluation;

namespace Funnel.Training.Data;

/// <summary>Training rows from JSON Lines: one object per line, the columns its keys in order (taken from the first
/// row; every row must have the same keys). Text values are strings or arrays of strings, labels numbers or arrays
/// of numbers.</summary>
internal static class JsonLinesReader
{
    public static TrainingData Read(string path)
    {
        var examples = new List<TrainingExample>();
        string[]? columns = null;
        long lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(line);
            }
            catch (JsonException e)
            {
                throw new DatasetFormatException(path, lineNumber, $"invalid JSON ({e.Message})");
            }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new DatasetFormatException(path, lineNumber, "expected a JSON object per line");
                string[] keys = doc.RootElement.EnumerateObject().Select(p => p.Name).ToArray();
                columns ??= keys;
                foreach (string column in columns)
                    if (!doc.RootElement.TryGetProperty(column, out _))
                        throw new DatasetFormatException(path, lineNumber, $"missing column '{column}' (the first row has {string.Join(", ", columns)})");
                var texts = new List<string>();
                var labels = new List<float>();
                foreach (string column in columns)
                {
                    JsonElement value = doc.RootElement.GetProperty(column);
                    if (TrainingData.IsLabelColumn(column)) Labels(value, labels, path, lineNumber, column);
                    else Texts(value, texts, path, lineNumber, column);
                }
                examples.Add(new TrainingExample(texts, labels, lineNumber));
            }
        }
        if (columns == null) throw new DatasetFormatException(path, 0, "no training rows");
        string? label = columns.FirstOrDefault(TrainingData.IsLabelColumn);
        return new TrainingData(path, columns.Where(c => !TrainingData.IsLabelColumn(c)).ToArray(), label, examples);
    }

    private static void Texts(JsonElement value, List<string> texts, string path, long line, string column)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                texts.Add(value.GetString()!);
                return;
            case JsonValueKind.Array:
                foreach (JsonElement item in value.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String) throw new DatasetFormatException(path, line, $"column '{column}': expected strings in the list, found {item.ValueKind}");
                    texts.Add(item.GetString()!);
                }
                return;
            default:
                throw new DatasetFormatException(path, line, $"column '{column}': expected a string (or a list of strings), found {value.ValueKind}");
        }
    }

    private static void Labels(JsonElement value, List<float> labels, string path, long line, string column)
    {
        IEnumerable<JsonElement> items = value.ValueKind == JsonValueKind.Array ? value.EnumerateArray() : [value];
        foreach (JsonElement item in items)
        {
            float label = item.ValueKind switch
            {
                JsonValueKind.Number => item.GetSingle(),
                JsonValueKind.True => 1,
                JsonValueKind.False => 0,
                JsonValueKind.String when float.TryParse(item.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out float f) => f,
                _ => throw new DatasetFormatException(path, line, $"column '{column}': expected a number, found {item.GetRawText()}"),
            };
            labels.Add(label);
        }
    }
}
