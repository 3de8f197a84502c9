using Funnel.Retrieval.Storage;

namespace Funnel.Retrieval;

/// <summary>
/// A collection's durable history: the committed manifest and the write-ahead log after it. Opening replays the log's batches
/// (<see cref="Replay"/>); a batch is acknowledged once <see cref="Append"/> has fsynced it; <see cref="Commit"/> makes a written
/// generation the committed one (the manifest's atomic rename is the commit point), starts its empty log and drops what it
/// superseded. Not thread-safe: the collection's writer gate serializes its callers.
/// </summary>
internal sealed class CollectionLog(string folder, CollectionManifest manifest) : IDisposable
{
    private CollectionManifest _manifest = manifest;
    private WriteAheadLog? _wal;

    /// <summary>The committed manifest; readable from any thread.</summary>
    public CollectionManifest Manifest => Volatile.Read(ref _manifest);

    /// <summary>The sequence number of the last batch logged.</summary>
    public long LastSequence => Wal.LastSequence;

    /// <summary>Bytes in the log (a checkpoint empties it).</summary>
    public long Length => Wal.Length;

    /// <summary>True when the log holds batches the committed generation does not.</summary>
    public bool HasUncheckpointed => Wal.LastSequence != Manifest.WalSequence;

    private WriteAheadLog Wal => _wal ?? throw new InvalidOperationException("the collection's log is not open for writing");

    /// <summary>
    /// Replays the committed generation's log: hands each intact batch to <paramref name="apply"/>, in order. Without
    /// <paramref name="salvage"/> any damage other than a torn tail throws <see cref="CollectionCorruptException"/> (naming the
    /// file) before the log is changed; with it (explicit recovery) damaged ranges and batches that cannot be applied are
    /// skipped and recorded there. Returns the scan, for <see cref="OpenForAppend"/>, and the batches applied.
    /// </summary>
    public (WalScan Scan, int Replayed) Replay(Action<List<CollectionOperation>> apply, LogSalvage? salvage = null)
    {
        CollectionManifest m = Manifest;
        string logPath = CollectionFolder.Log(folder, m.Generation);
        string logName = Path.GetFileName(logPath);
        int replayed = 0;
        bool seen = false;
        WalScan scan = WriteAheadLog.Scan(logPath, m.Generation, (sequence, payload) =>
        {
            // A log holds exactly the batches after its generation's snapshot, so its first record follows walSequence
            // (unless recovery skipped a damaged first record).
            bool first = !seen;
            seen = true;
            if (first && sequence != m.WalSequence + 1 && salvage?.Damage.Count is null or 0)
            {
                string problem = $"{CollectionManifest.FileName} says its snapshot holds batches up to {m.WalSequence}, but {logName} starts at batch {sequence}";
                if (salvage is null)
                    throw new CollectionCorruptException(Path.Combine(folder, CollectionManifest.FileName), null,
                        $"collection is corrupt: {problem}, so batches would be skipped. Nothing was changed; `funnel collection recover` replays every intact batch of the log.");
                salvage.ManifestProblem = problem;
            }
            List<CollectionOperation> batch = RecordCodec.DecodeBatch(payload);
            if (Unappliable(batch, m.BiEncoder.Dimension) is { } reason)
            {
                if (salvage is null)
                    throw new CollectionCorruptException(logPath, null,
                        $"{logName}: batch {sequence} cannot be applied ({reason}). Nothing was changed; `funnel collection recover` keeps the other batches and reports this one.");
                salvage.Dropped.Add(sequence);
                return;
            }
            apply(batch);
            salvage?.Replayed.Add(sequence);
            replayed++;
        }, salvage?.Damage);
        if (salvage is not null) salvage.Scan = scan;
        return (scan, replayed);
    }

    /// <summary>Opens the committed generation's log for appending after <paramref name="scan"/> (what <see cref="Replay"/> read),
    /// cutting off its torn tail.</summary>
    public void OpenForAppend(WalScan scan) => OpenForAppend(scan, Manifest.WalSequence);

    /// <summary>
    /// After a salvaging <see cref="Replay"/>: keeps a copy of a damaged log beside it (returned; null when nothing was
    /// damaged) and opens the log for appending past every sequence number seen, so that numbers only grow, even past
    /// batches that were lost. The caller then commits the salvaged state as a new generation.
    /// </summary>
    public string? ResumeAfter(LogSalvage salvage)
    {
        CollectionManifest m = Manifest;
        string logPath = CollectionFolder.Log(folder, m.Generation);
        string? copy = null;
        if (salvage.Damage.Count > 0 || salvage.Dropped.Count > 0 || salvage.ManifestProblem is not null)
        {
            copy = Path.Combine(folder, $"damaged-{Path.GetFileNameWithoutExtension(logPath)}-{DateTime.UtcNow:yyyyMMddHHmmss}.log");
            File.Copy(logPath, copy, overwrite: true);
        }
        long last = Math.Max(m.WalSequence, salvage.Replayed.Concat(salvage.Dropped).DefaultIfEmpty(0).Max());
        OpenForAppend(salvage.Scan with { LastSequence = last }, last);
        return copy;
    }

    private void OpenForAppend(WalScan scan, long lastSequence)
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

    /// <summary>Why a logged batch cannot be applied (a vector of the wrong size or with NaN/∞, as logs written before
    /// upserts checked them may hold), or null.</summary>
    private static string? Unappliable(List<CollectionOperation> batch, int dimension)
    {
        foreach (CollectionOperation operation in batch)
            if (operation is UpsertOperation upsert)
                foreach (float[] v in upsert.Vectors)
                    if (UpsertOperation.VectorProblem(v, dimension) is { } problem) return $"document '{upsert.Stored.Document.Id}': {problem}";
        return null;
    }

    public void Dispose() => _wal?.Dispose();
}

/// <summary>What a salvaging <see cref="CollectionLog.Replay"/> kept and lost.</summary>
internal sealed class LogSalvage
{
    public List<WalDamage> Damage { get; } = [];
    public List<long> Replayed { get; } = [];
    public List<long> Dropped { get; } = [];
    public string? ManifestProblem { get; set; }
    public WalScan Scan { get; set; }

    /// <summary>The report of a recovery from the snapshot at <paramref name="walSequence"/>: batch numbers neither replayed nor
    /// dropped were lost in damaged ranges.</summary>
    public CollectionRecoveryReport Report(long walSequence, string? damagedLogCopy, int documents)
    {
        var missing = new List<long>();
        long expected = walSequence + 1;
        foreach (long sequence in Replayed.Concat(Dropped).Order())
        {
            for (long s = expected; s < sequence; s++) missing.Add(s);
            expected = Math.Max(expected, sequence + 1);
        }
        return new CollectionRecoveryReport(Replayed.Count, Damage, missing, Dropped, Scan.TornBytes, ManifestProblem, damagedLogCopy, documents);
    }
}
