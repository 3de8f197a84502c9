using System.Buffers.Binary;
using System.IO.Hashing;
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
            Span<byte> hash = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(hash, hashing.Hash.GetCurrentHashAsUInt64());
            stream.Write(hash);
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
            Span<byte> stored = stackalloc byte[8];
            file.ReadExactly(stored);
            if (BinaryPrimitives.ReadUInt64LittleEndian(stored) != hashing.Hash.GetCurrentHashAsUInt64()) throw Corrupt(path, "checksum mismatch");
            return (documents, nextChunkId);
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException or ArgumentOutOfRangeException or OverflowException)
        {
            throw Corrupt(path, "truncated or malformed record");
        }
    }

    private static InvalidDataException Corrupt(string path, string why) => new($"document snapshot '{path}' is corrupt: {why}");

    /// <summary>Passes bytes through to an inner stream (up to an optional limit when reading) and hashes them on the way.</summary>
    private sealed class HashingStream(Stream inner, long limit = long.MaxValue) : Stream
    {
        private long _position;
        public XxHash64 Hash { get; } = new();
        public override bool CanRead => inner.CanRead;
        public override bool CanSeek => false;
        public override bool CanWrite => inner.CanWrite;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer[..(int)Math.Min(buffer.Length, limit - _position)]);
            Hash.Append(buffer[..n]);
            _position += n;
            return n;
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Hash.Append(buffer);
            _position += buffer.Length;
        }

        public override void Flush() => inner.Flush();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
