using System.Buffers.Binary;
using System.IO.Hashing;
using Funnel.IO;

namespace Funnel.Retrieval.Storage;

/// <summary>What a scan of a log found: the length of its intact prefix and the last sequence number in it.</summary>
internal readonly record struct WalScan(long ValidLength, long LastSequence, long TornBytes, int Records, long FirstSequence = 0);

/// <summary>A damaged range of a log that recovery skipped: where it starts, how long it is, and the last intact sequence before it.</summary>
public readonly record struct WalDamage(long Offset, long Length, long? AfterSequence);

/// <summary>
/// Append-only log of collection batches. Layout: a 24-byte header (magic <c>FNLWAL01</c>, u32 format version, u32 zero,
/// u64 generation) then records <c>[u32 payload length][u64 sequence][payload][u32 CRC-32 of the preceding bytes]</c>,
/// little-endian. <see cref="Append"/> fsyncs before it returns, so an acknowledged batch survives a crash; a crash during
/// an append leaves a torn tail, which a scan detects (short record or checksum mismatch) and the next writer truncates.
/// </summary>
internal sealed class WriteAheadLog : IDisposable
{
    private const int HeaderSize = 24;
    private const int RecordHeaderSize = 12;
    private const int FormatVersion = 1;
    private const int MaxPayload = int.MaxValue - 64;
    private static ReadOnlySpan<byte> Magic => "FNLWAL01"u8;

    private readonly FileStream _stream;

    public string Path { get; }
    public long Generation { get; }
    public long LastSequence { get; private set; }
    public long Length => _stream.Length;

    private WriteAheadLog(string path, long generation, FileStream stream, long lastSequence)
    {
        Path = path;
        Generation = generation;
        _stream = stream;
        LastSequence = lastSequence;
    }

    /// <summary>
    /// Reads every intact record of the log at <paramref name="path"/> (none when it does not exist). A damaged record with
    /// nothing intact after it is a torn tail (a crash during its append, which was never acknowledged) and ends the scan.
    /// A damaged record followed by intact ones is corruption of acknowledged data: without <paramref name="damage"/> the
    /// scan throws <see cref="CollectionCorruptException"/> naming the file and offset; with it (explicit recovery) the scan
    /// records each damaged range there and goes on with the next intact record.
    /// </summary>
    public static WalScan Scan(string path, long generation, Action<long, ReadOnlyMemory<byte>> onRecord, List<WalDamage>? damage = null)
    {
        if (!File.Exists(path)) return default;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
        long length = stream.Length;
        if (length < HeaderSize) return new WalScan(0, 0, length, 0); // torn while being created: nothing was acknowledged

        Span<byte> header = stackalloc byte[HeaderSize];
        stream.ReadExactly(header);
        if (!header[..8].SequenceEqual(Magic))
            throw new InvalidDataException($"'{path}' is not a Funnel write-ahead log (bad magic)");
        int version = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        if (version != FormatVersion)
            throw new InvalidDataException($"'{path}': write-ahead log format version {version} is not supported (expected {FormatVersion})");
        long fileGeneration = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
        if (fileGeneration != generation)
            throw new InvalidDataException($"'{path}' belongs to generation {fileGeneration}, but the manifest expects {generation}");

        long position = HeaderSize, lastSequence = 0, firstSequence = 0;
        int records = 0;
        while (true)
        {
            if (TryReadRecord(stream, position, length, records > 0 ? lastSequence : null) is not { } record)
            {
                // A damaged record: the torn tail of an interrupted append, unless an intact record follows it.
                long next = FindNextRecord(stream, position + 1, length, records > 0 ? lastSequence : null);
                if (next < 0) break;
                if (damage is null)
                    throw new CollectionCorruptException(path, position,
                        $"'{System.IO.Path.GetFileName(path)}' is corrupt at byte {position}: the record there fails its checksum, but intact records follow at byte {next}, " +
                        $"so acknowledged batches would be lost. Nothing was changed; `funnel collection recover` keeps the intact records and reports what is lost.");
                damage.Add(new WalDamage(position, next - position, records > 0 ? lastSequence : null));
                position = next;
                continue;
            }
            (long sequence, byte[] body) = record;
            if (records > 0 && sequence != lastSequence + 1 && damage is null)
                throw new CollectionCorruptException(path, position, $"'{path}': record sequence jumps from {lastSequence} to {sequence} at byte {position}");
            onRecord(sequence, body.AsMemory(0, body.Length - 4));
            if (records == 0) firstSequence = sequence;
            lastSequence = sequence;
            records++;
            position += RecordHeaderSize + body.Length;
        }
        return new WalScan(position, lastSequence, length - position, records, firstSequence);
    }

    /// <summary>The record at <paramref name="position"/> (its sequence and payload + CRC bytes), or null when none intact starts
    /// there. With <paramref name="after"/>, only a record with a later sequence counts (a resynchronising search must not
    /// mistake bytes inside a payload, or an old record, for the next one).</summary>
    private static (long Sequence, byte[] Body)? TryReadRecord(FileStream stream, long position, long length, long? after)
    {
        if (position + RecordHeaderSize + 4 > length) return null;
        Span<byte> recordHeader = stackalloc byte[RecordHeaderSize];
        stream.Position = position;
        stream.ReadExactly(recordHeader);
        int payloadLength = BinaryPrimitives.ReadInt32LittleEndian(recordHeader);
        long sequence = BinaryPrimitives.ReadInt64LittleEndian(recordHeader[4..]);
        if (payloadLength < 0 || payloadLength > MaxPayload || position + RecordHeaderSize + payloadLength + 4 > length) return null;
        if (sequence < 1 || (after is { } last && sequence <= last)) return null;
        byte[] body = new byte[payloadLength + 4];
        stream.ReadExactly(body);
        var crc = new Crc32();
        crc.Append(recordHeader);
        crc.Append(body.AsSpan(0, payloadLength));
        return crc.GetCurrentHashAsUInt32() == BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(payloadLength)) ? (sequence, body) : null;
    }

    /// <summary>The offset of the first intact record at or after <paramref name="from"/>, or -1 when none is left.</summary>
    private static long FindNextRecord(FileStream stream, long from, long length, long? after)
    {
        for (long candidate = from; candidate + RecordHeaderSize + 4 <= length; candidate++)
            if (TryReadRecord(stream, candidate, length, after) is not null) return candidate;
        return -1;
    }

    /// <summary>
    /// Opens the log for appending after a <see cref="Scan"/>: creates it when absent and cuts off the torn tail the scan
    /// reported. <paramref name="sequenceBase"/> is the last sequence the snapshot already includes (used for a new log).
    /// </summary>
    public static WriteAheadLog OpenForAppend(string path, long generation, WalScan scan, long sequenceBase)
    {
        var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        try
        {
            if (scan.ValidLength < HeaderSize)
            {
                stream.SetLength(0);
                Span<byte> header = stackalloc byte[HeaderSize];
                header.Clear();
                Magic.CopyTo(header);
                BinaryPrimitives.WriteInt32LittleEndian(header[8..], FormatVersion);
                BinaryPrimitives.WriteInt64LittleEndian(header[16..], generation);
                stream.Write(header);
                stream.Flush(flushToDisk: true);
                DurableFile.SyncDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
            }
            else if (stream.Length != scan.ValidLength)
            {
                stream.SetLength(scan.ValidLength);
                stream.Flush(flushToDisk: true);
            }
            stream.Seek(0, SeekOrigin.End);
            return new WriteAheadLog(path, generation, stream, scan.Records > 0 ? scan.LastSequence : sequenceBase);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Appends one record and fsyncs it; returns its sequence number.</summary>
    public long Append(ReadOnlySpan<byte> payload)
    {
        if (payload.Length > MaxPayload) throw new ArgumentException($"batch of {payload.Length} bytes is too large for one log record; use smaller batches", nameof(payload));
        long sequence = LastSequence + 1;
        Span<byte> header = stackalloc byte[RecordHeaderSize];
        BinaryPrimitives.WriteInt32LittleEndian(header, payload.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header[4..], sequence);
        var crc = new Crc32();
        crc.Append(header);
        crc.Append(payload);
        Span<byte> trailer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(trailer, crc.GetCurrentHashAsUInt32());

        long start = _stream.Position;
        try
        {
            _stream.Write(header);
            _stream.Write(payload);
            _stream.Write(trailer);
            _stream.Flush(flushToDisk: true);
        }
        catch
        {
            // Leave no half record behind for this process's later appends (a crash leaves one for the next scan to cut).
            _stream.SetLength(start);
            throw;
        }
        LastSequence = sequence;
        return sequence;
    }

    public void Dispose() => _stream.Dispose();
}
