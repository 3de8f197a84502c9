using System.Buffers.Binary;
using System.IO.Hashing;

namespace Funnel.IO;

/// <summary>
/// Passes bytes through to an inner stream, read (up to an optional <paramref name="limit"/>) or written, and hashes them on
/// the way with XxHash64: the checksum of Funnel's file formats (vector index, BM25 index, document snapshot).
/// <see cref="Position"/> counts from <paramref name="start"/>, the inner stream's position when this is made. Disposing it
/// leaves the inner stream open.
/// </summary>
internal sealed class HashingStream(Stream inner, long start = 0, long limit = long.MaxValue) : Stream
{
    private readonly XxHash64 _hash = new();
    private long _position = start;

    /// <summary>The XxHash64 of the bytes passed so far.</summary>
    public ulong Checksum => _hash.GetCurrentHashAsUInt64();

    /// <summary>Writes <see cref="Checksum"/> to the inner stream (unhashed, little-endian): the trailer of a file checksummed to its end.</summary>
    public void WriteChecksum()
    {
        Span<byte> checksum = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(checksum, Checksum);
        inner.Write(checksum);
    }

    /// <summary>Reads the 8-byte trailer from the inner stream; true when it is <see cref="Checksum"/>.</summary>
    public bool ReadChecksumMatches()
    {
        Span<byte> stored = stackalloc byte[8];
        inner.ReadExactly(stored);
        return BinaryPrimitives.ReadUInt64LittleEndian(stored) == Checksum;
    }

    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer[..(int)Math.Min(buffer.Length, limit - _position)]);
        _hash.Append(buffer[..n]);
        _position += n;
        return n;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.Append(buffer);
        inner.Write(buffer);
        _position += buffer.Length;
    }

    public override void Flush() => inner.Flush();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    protected override void Dispose(bool disposing) { }
}
