namespace Funnel.Retrieval;

/// <summary>
/// A collection file holds damaged acknowledged data (not just the torn tail of an interrupted write). Opening refuses
/// rather than dropping what follows; <see cref="Collection.Recover"/> keeps the intact records and reports the rest.
/// </summary>
public sealed class CollectionCorruptException(string file, long? offset, string message) : FunnelException(FunnelErrorKind.Corrupt, message)
{
    /// <summary>The damaged file (full path; show only its name to remote clients).</summary>
    public string File { get; } = file;

    /// <summary>The byte offset of the damage in <see cref="File"/>, when known.</summary>
    public long? Offset { get; } = offset;
}
