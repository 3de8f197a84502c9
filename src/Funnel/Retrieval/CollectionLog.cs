using Funnel.Retrieval.Storage;

namespace Funnel.Retrieval;

/// <summary>
/// A writable collection's durable history: the committed manifest and the write-ahead log after it. A batch is acknowledged
/// once <see cref="Append"/> has fsynced it; <see cref="Commit"/> makes a written generation the committed one (the manifest's
/// atomic rename is the commit point), starts its empty log and drops what it superseded. Replay of the log on open is
/// <see cref="WriteAheadLog.Scan"/>'s. Not thread-safe: the collection's writer gate serializes its callers.
/// </summary>
internal sealed class CollectionLog(string folder, CollectionManifest manifest) : IDisposable
{
    private CollectionManifest _manifest = manifest;
    private WriteAheadLog? _wal;

    /// <summary>The committed manifest; readable from any thread.</summary>
    public CollectionManifest Manifest => Volatile.Read(ref _manifest);

    public bool IsOpen => _wal is not null;

    /// <summary>The sequence number of the last batch logged.</summary>
    public long LastSequence => Wal.LastSequence;

    /// <summary>Bytes in the log (a checkpoint empties it).</summary>
    public long Length => Wal.Length;

    /// <summary>True when the log holds batches the committed generation does not.</summary>
    public bool HasUncheckpointed => Wal.LastSequence != Manifest.WalSequence;

    private WriteAheadLog Wal => _wal ?? throw new InvalidOperationException("the collection's log is not open for writing");

    /// <summary>Opens the committed generation's log for appending after <paramref name="scan"/> (what opening replayed).</summary>
    public void OpenForAppend(WalScan scan, long lastSequence)
    {
        _wal?.Dispose();
        CollectionManifest m = Manifest;
        _wal = WriteAheadLog.OpenForAppend(CollectionFolder.Log(folder, m.Generation), m.Generation, scan, lastSequence);
    }

    /// <summary>Logs a batch durably (fsynced); returns its sequence number.</summary>
    public long Append(List<CollectionOperation> operations) => Wal.Append(RecordCodec.EncodeBatch(operations));

    /// <summary>Commits a written generation, then switches the log and drops the old generation.</summary>
    public void Commit(CollectionManifest next)
    {
        next = next with { Updated = DateTimeOffset.UtcNow };
        next.Write(folder);
        Volatile.Write(ref _manifest, next);
        _wal?.Dispose();
        _wal = WriteAheadLog.OpenForAppend(CollectionFolder.Log(folder, next.Generation), next.Generation, default, next.WalSequence);
        CollectionFolder.RemoveLeftovers(folder, next.Generation);
    }

    public void Dispose() => _wal?.Dispose();
}
