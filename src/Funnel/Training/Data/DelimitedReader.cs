using System.Globalization;
using System.Text;
using Funnel.Evaluation;

namespace Funnel.Training.Data;

/// <summary>
/// Training rows from CSV (RFC 4180: fields may be quoted, a quote inside doubled, a quoted field may span lines)
/// or TSV (tab-separated, no quoting, as the STS benchmark files are). The first record is the header.
/// </summary>
internal static class DelimitedReader
{
    public static TrainingData Read(string path, char separator)
    {
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var records = separator == '\t' ? TabRecords(reader) : CsvRecords(reader, path);
        string[]? header = null;
        var examples = new List<TrainingExample>();
        foreach (var (line, fields) in records)
        {
            if (header == null)
            {
                header = fields.Select(f => f.Trim()).ToArray();
                if (header.Any(string.IsNullOrEmpty)) throw new DatasetFormatException(path, line, "the header row has an empty column name");
                continue;
            }
            if (fields.Count != header.Length)
                throw new DatasetFormatException(path, line, $"{fields.Count} fields, the header has {header.Length} ({string.Join(", ", header)})");
            var texts = new List<string>();
            var labels = new List<float>();
            for (int c = 0; c < header.Length; c++)
            {
                if (!TrainingData.IsLabelColumn(header[c]))
                {
                    texts.Add(fields[c]);
                    continue;
                }
                if (!float.TryParse(fields[c], NumberStyles.Float, CultureInfo.InvariantCulture, out float label))
                    throw new DatasetFormatException(path, line, $"column '{header[c]}': '{fields[c]}' is not a number");
                labels.Add(label);
            }
            examples.Add(new TrainingExample(texts, labels, line));
        }
        if (header == null) throw new DatasetFormatException(path, 0, "empty file (expected a header row, then one row per example)");
        return new TrainingData(path, header.Where(h => !TrainingData.IsLabelColumn(h)).ToArray(), header.FirstOrDefault(TrainingData.IsLabelColumn), examples);
    }

    private static IEnumerable<(long Line, List<string> Fields)> TabRecords(TextReader reader)
    {
        long line = 0;
        while (reader.ReadLine() is { } text)
        {
            line++;
            if (text.Length == 0) continue;
            yield return (line, [.. text.Split('\t')]);
        }
    }

    /// <summary>RFC 4180 records; each is reported at the line it starts on.</summary>
    private static IEnumerable<(long Line, List<string> Fields)> CsvRecords(TextReader reader, string path)
    {
        long line = 0;
        while (reader.ReadLine() is { } text)
        {
            line++;
            if (text.Length == 0) continue;
            long start = line;
            var fields = new List<string>();
            var field = new StringBuilder();
            bool quoted = false, wasQuoted = false;
            int i = 0;
            while (true)
            {
                if (i == text.Length)
                {
                    if (!quoted) break;
                    // A quoted field goes on to the next line.
                    text = reader.ReadLine() ?? throw new DatasetFormatException(path, start, "a quoted field is never closed");
                    line++;
                    field.Append('\n');
                    i = 0;
                    continue;
                }
                char ch = text[i++];
                if (quoted)
                {
                    if (ch != '"') field.Append(ch);
                    else if (i < text.Length && text[i] == '"')
                    {
                        field.Append('"');
                        i++;
                    }
                    else quoted = false;
                }
                else if (ch == ',')
                {
                    fields.Add(field.ToString());
                    field.Clear();
                    wasQuoted = false;
                }
                else if (ch == '"' && field.Length == 0 && !wasQuoted)
                {
                    quoted = wasQuoted = true;
                }
                else
                {
                    field.Append(ch);
                }
            }
            fields.Add(field.ToString());
            yield return (start, fields);
        }
    }
}
