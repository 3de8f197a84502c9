using Funnel.IO;

namespace Funnel.Retrieval.Storage;

/// <summary>
/// The document store of one checkpoint: <c>FNLDOCS1</c>, u32 version, then (7-bit) document count, next chunk id and the
/// documents (see <see cref="RecordCodec.WriteStored"/>), then the XxHash64 of everything before it.
/// </summary>
internal static class DocumentSnapshot
{
    private const int FormatVersion = 1;
    private static ReadOnlySpan<byte> Magic => "FNLDOCS1"u8;

    public static void Write(string path, IReadOnlyCollection<StoredDocument> documents, long nextChunkId) =>
        DurableFile.WriteAtomic(path, stream =>
        {
            var hashing = new HashingStream(stream);
            using (var writer = new BinaryWriter(hashing, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Magic);
                writer.Write(FormatVersion);
                writer.Write7BitEncodedInt(documents.Count);
                writer.Write7BitEncodedInt64(nextChunkId);
                foreach (StoredDocument stored in documents) RecordCodec.WriteStored(writer, stored);
            }
            hashing.WriteChecksum();
        });

    public static (List<StoredDocument> Documents, long NextChunkId) Read(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        if (file.Length < Magic.Length + 4 + 8) throw Corrupt(path, "file is too short");
        var hashing = new HashingStream(file, limit: file.Length - 8);
        try
        {
            using var reader = new BinaryReader(hashing, System.Text.Encoding.UTF8, leaveOpen: true);
            if (!reader.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic)) throw Corrupt(path, "bad magic");
            int version = reader.ReadInt32();
            if (version != FormatVersion) throw Corrupt(path, $"format version {version} is not supported (expected {FormatVersion})");
            int count = reader.Read7BitEncodedInt();
            long nextChunkId = reader.Read7BitEncodedInt64();
            var documents = new List<StoredDocument>(count);
            for (int i = 0; i < count; i++) documents.Add(RecordCodec.ReadStored(reader));
            if (hashing.Position != file.Length - 8) throw Corrupt(path, "trailing bytes after the documents");
            if (!hashing.ReadChecksumMatches()) throw Corrupt(path, "checksum mismatch");
            return (documents, nextChunkId);
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException or ArgumentOutOfRangeException or OverflowException)
        {
            throw Corrupt(path, "truncated or malformed record");
        }
    }

    private static InvalidDataException Corrupt(string path, string why) => new($"document snapshot '{path}' is corrupt: {why}");

}
