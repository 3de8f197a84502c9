using System.Text;
using Funnel.IO;

namespace Funnel.Evaluation;

/// <summary>Line-oriented reading with line numbers for error messages, and atomic text writes.</summary>
internal static class TextFiles
{
    public static StreamReader OpenText(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"file '{path}' does not exist", path);
        return new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
    }

    /// <summary>The non-blank lines of <paramref name="reader"/> split into fields (on whitespace when <paramref name="separators"/> is null).</summary>
    public static IEnumerable<(long LineNumber, string[] Fields)> ReadFields(TextReader reader, string source, char[]? separators)
    {
        long lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var fields = separators == null
                ? line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
                : line.TrimEnd('\r').Split(separators);
            yield return (lineNumber, fields);
        }
    }

    /// <summary>Writes UTF-8 text to <paramref name="path"/> (creating its folder) through a fsynced temp file renamed into place.</summary>
    public static void WriteAtomic(string path, Action<TextWriter> write)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        DurableFile.WriteAtomic(path, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
            write(writer);
        });
    }
}
