using System.Globalization;

namespace Funnel.Evaluation;

/// <summary>One sentence pair of a semantic textual similarity set and its gold score (0 – 5 in STS-B).</summary>
public sealed record StsPair(string Sentence1, string Sentence2, double Score);

/// <summary>
/// The STS benchmark files (<c>sts-train.csv</c>, <c>sts-dev.csv</c>, <c>sts-test.csv</c>): tab-separated, no header, the
/// fields genre, file, year, id, score, sentence 1, sentence 2, sometimes followed by source fields. Fields are split on tabs
/// only, with no quote handling: some sentences hold an unbalanced <c>"</c>, and a CSV reader would swallow the lines after it.
/// </summary>
public static class StsBenchmark
{
    private const int ScoreField = 4, Sentence1Field = 5, Sentence2Field = 6;

    /// <summary>The file of <paramref name="split"/> (train, dev or test) in <paramref name="folder"/>.</summary>
    public static string SplitPath(string folder, string split) => Path.Combine(folder, $"sts-{split}.csv");

    /// <summary>The splits whose file is in <paramref name="folder"/>.</summary>
    public static IReadOnlyList<string> Splits(string folder) =>
        Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, "sts-*.csv").Select(f => Path.GetFileNameWithoutExtension(f)["sts-".Length..]).Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>True when <paramref name="path"/> is a folder holding STS benchmark files.</summary>
    public static bool IsStsBenchmark(string path) => Splits(path).Count > 0;

    /// <summary>The pairs of <paramref name="split"/>; a missing split is a <see cref="DatasetFormatException"/> naming those there are.</summary>
    public static IReadOnlyList<StsPair> ReadSplit(string folder, string split)
    {
        string path = SplitPath(folder, split);
        if (!File.Exists(path))
        {
            var splits = Splits(folder);
            throw new DatasetFormatException(folder, 0, $"no STS split '{split}' (sts-{split}.csv; available: {(splits.Count == 0 ? "none" : string.Join(", ", splits))})");
        }
        return Read(path);
    }

    public static IReadOnlyList<StsPair> Read(string path)
    {
        using var reader = TextFiles.OpenText(path);
        return Read(reader, path);
    }

    /// <summary>Reads STS benchmark lines; a short line or a score that is not a number is a <see cref="DatasetFormatException"/> naming the line.</summary>
    public static IReadOnlyList<StsPair> Read(TextReader reader, string source)
    {
        var pairs = new List<StsPair>();
        foreach (var (lineNumber, fields) in TextFiles.ReadFields(reader, source, separators: ['\t']))
        {
            if (fields.Length <= Sentence2Field)
                throw new DatasetFormatException(source, lineNumber,
                    $"expected at least 7 tab-separated fields (genre, file, year, id, score, sentence1, sentence2), found {fields.Length}");
            if (!double.TryParse(fields[ScoreField], NumberStyles.Float, CultureInfo.InvariantCulture, out double score) || !double.IsFinite(score))
                throw new DatasetFormatException(source, lineNumber, $"field 5 (score) '{fields[ScoreField]}' is not a number");
            pairs.Add(new StsPair(fields[Sentence1Field], fields[Sentence2Field], score));
        }
        return pairs;
    }
}
