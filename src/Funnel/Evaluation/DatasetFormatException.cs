namespace Funnel.Evaluation;

/// <summary>Malformed input in a dataset, qrels or run file; the message names the file and (when known) the line.</summary>
public sealed class DatasetFormatException(string file, long line, string problem)
    : FunnelException(FunnelErrorKind.InvalidInput, line > 0 ? $"{file}, line {line}: {problem}" : $"{file}: {problem}")
{
    public string File { get; } = file;

    /// <summary>1-based line number, 0 when the problem is not tied to a line.</summary>
    public long Line { get; } = line;
}
