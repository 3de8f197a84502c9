using System.Buffers.Binary;
using System.IO.Hashing;
using System.IO.MemoryMappedFiles;
using Funnel.IO;

namespace Funnel.Index;

/// <summary>
/// The on-disk layout shared by both indexes (see docs/file-formats.md, "Index file format"): a 192-byte little-endian header,
/// then 64-byte-aligned sections (rows, full-precision floats, upper-layer links, metadata). Bytes 8..16 hold
/// XxHash64 of every byte from 16 to the end, so any truncation or flipped byte is caught before the data is
/// trusted. Rows are stored exactly as in memory so <see cref="MappedFile"/> can serve them in place.
/// </summary>
internal static class IndexFile
{
    public const int HeaderBytes = 192;
    public const int FormatVersion = 1;
    public const int SectionCount = 4;
    private static ReadOnlySpan<byte> Magic => "FUNNLVIX"u8;

    public enum Kind { Flat = 1, Hnsw = 2 }

    public enum Section { Rows = 0, FullPrecision = 1, UpperLinks = 2, Metadata = 3 }

    /// <summary>Every header field; HNSW-only fields are zero for a flat index.</summary>
    public record struct Header(
        Kind Kind, int Dimension, DistanceMetric Metric, VectorQuantization Quantization, bool HasFullPrecision,
        int SlotCount, int LiveCount, int RowBytes, int M, int EfConstruction, int EfSearch,
        int EntryPoint, int MaxLevel, int UpperBlockCount, ulong Seed);

    public static InvalidDataException Corrupt(string path, string what) => new($"{path}: not a valid Funnel index file: {what}");

    /// <summary>Writes header and sections to a temp file beside <paramref name="path"/>, fsyncs, and renames it into place.</summary>
    public static void Write(string path, Header h, IReadOnlyList<(long Length, Action<Stream> Write)> sections)
    {
        if (sections.Count != SectionCount) throw new ArgumentException("wrong section count", nameof(sections));
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        var header = new byte[HeaderBytes];
        Magic.CopyTo(header);
        var s = header.AsSpan();
        BinaryPrimitives.WriteInt32LittleEndian(s[16..], FormatVersion);
        BinaryPrimitives.WriteInt32LittleEndian(s[20..], (int)h.Kind);
        BinaryPrimitives.WriteInt32LittleEndian(s[24..], h.Dimension);
        BinaryPrimitives.WriteInt32LittleEndian(s[28..], (int)h.Metric);
        BinaryPrimitives.WriteInt32LittleEndian(s[32..], (int)h.Quantization);
        BinaryPrimitives.WriteInt32LittleEndian(s[36..], h.HasFullPrecision ? 1 : 0);
        BinaryPrimitives.WriteInt32LittleEndian(s[40..], h.SlotCount);
        BinaryPrimitives.WriteInt32LittleEndian(s[44..], h.LiveCount);
        BinaryPrimitives.WriteInt32LittleEndian(s[48..], h.RowBytes);
        BinaryPrimitives.WriteInt32LittleEndian(s[52..], h.M);
        BinaryPrimitives.WriteInt32LittleEndian(s[56..], h.EfConstruction);
        BinaryPrimitives.WriteInt32LittleEndian(s[60..], h.EfSearch);
        BinaryPrimitives.WriteInt32LittleEndian(s[64..], h.EntryPoint);
        BinaryPrimitives.WriteInt32LittleEndian(s[68..], h.MaxLevel);
        BinaryPrimitives.WriteInt32LittleEndian(s[72..], h.UpperBlockCount);
        BinaryPrimitives.WriteUInt64LittleEndian(s[80..], h.Seed);
        long offset = HeaderBytes;
        for (int i = 0; i < SectionCount; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(s[(96 + 16 * i)..], offset);
            BinaryPrimitives.WriteInt64LittleEndian(s[(104 + 16 * i)..], sections[i].Length);
            offset = AlignUp(offset + sections[i].Length);
        }
        DurableFile.WriteAtomic(full, fs =>
        {
            fs.Write(header, 0, 16);
            using var hashing = new HashingStream(fs, start: 16);
            hashing.Write(header, 16, HeaderBytes - 16);
            long position = HeaderBytes;
            foreach (var (length, write) in sections)
            {
                write(hashing);
                if (hashing.Position - position != length) throw new InvalidOperationException($"section wrote {hashing.Position - position} bytes, declared {length}");
                long padded = AlignUp(hashing.Position);
                hashing.Write(new byte[padded - hashing.Position]);
                position = padded;
            }
            Span<byte> checksum = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(checksum, hashing.Checksum);
            fs.Position = 8;
            fs.Write(checksum);
        });
    }

    private static long AlignUp(long n) => (n + 63) & ~63L;

    /// <summary>Maps the file copy-on-write, verifies the checksum and the header, and returns the header and section spans.</summary>
    public static unsafe (Header Header, MappedFile Map, (long Offset, long Length)[] Sections) Open(string path, Kind expected)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: index file not found", path);
        if (info.Length < HeaderBytes) throw Corrupt(path, $"{info.Length} bytes is shorter than the {HeaderBytes}-byte header");
        var map = new MappedFile(path, info.Length);
        try
        {
            byte* p = map.Pointer;
            long length = info.Length;
            if (!new ReadOnlySpan<byte>(p, 8).SequenceEqual(Magic)) throw Corrupt(path, "bad magic (expected FUNNLVIX)");
            var hash = new XxHash64();
            for (long at = 16; at < length; at += 1 << 30) hash.Append(new ReadOnlySpan<byte>(p + at, (int)Math.Min(1 << 30, length - at)));
            ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(p + 8, 8));
            if (hash.GetCurrentHashAsUInt64() != stored) throw Corrupt(path, "checksum mismatch (the file is truncated or damaged)");
            var s = new ReadOnlySpan<byte>(p, HeaderBytes);
            int version = BinaryPrimitives.ReadInt32LittleEndian(s[16..]);
            if (version != FormatVersion) throw Corrupt(path, $"format version {version}, this build reads {FormatVersion}");
            var kind = (Kind)BinaryPrimitives.ReadInt32LittleEndian(s[20..]);
            if (kind != expected) throw Corrupt(path, $"holds a {kind} index, expected {expected}");
            var h = new Header(kind,
                BinaryPrimitives.ReadInt32LittleEndian(s[24..]),
                (DistanceMetric)BinaryPrimitives.ReadInt32LittleEndian(s[28..]),
                (VectorQuantization)BinaryPrimitives.ReadInt32LittleEndian(s[32..]),
                BinaryPrimitives.ReadInt32LittleEndian(s[36..]) == 1,
                BinaryPrimitives.ReadInt32LittleEndian(s[40..]),
                BinaryPrimitives.ReadInt32LittleEndian(s[44..]),
                BinaryPrimitives.ReadInt32LittleEndian(s[48..]),
                BinaryPrimitives.ReadInt32LittleEndian(s[52..]),
                BinaryPrimitives.ReadInt32LittleEndian(s[56..]),
                BinaryPrimitives.ReadInt32LittleEndian(s[60..]),
                BinaryPrimitives.ReadInt32LittleEndian(s[64..]),
                BinaryPrimitives.ReadInt32LittleEndian(s[68..]),
                BinaryPrimitives.ReadInt32LittleEndian(s[72..]),
                BinaryPrimitives.ReadUInt64LittleEndian(s[80..]));
            if (h.Dimension is < 1 or > 65536) throw Corrupt(path, $"dimension {h.Dimension} out of range");
            if (!Enum.IsDefined(h.Metric)) throw Corrupt(path, $"unknown metric {(int)h.Metric}");
            if (!Enum.IsDefined(h.Quantization)) throw Corrupt(path, $"unknown quantization {(int)h.Quantization}");
            if (h.SlotCount < 0 || h.LiveCount < 0 || h.LiveCount > h.SlotCount) throw Corrupt(path, $"counts {h.LiveCount}/{h.SlotCount} inconsistent");
            var sections = new (long, long)[SectionCount];
            for (int i = 0; i < SectionCount; i++)
            {
                long offset = BinaryPrimitives.ReadInt64LittleEndian(s[(96 + 16 * i)..]);
                long len = BinaryPrimitives.ReadInt64LittleEndian(s[(104 + 16 * i)..]);
                if (offset < HeaderBytes || (offset & 63) != 0 || len < 0 || offset > length || len > length - offset)
                    throw Corrupt(path, $"section {(Section)i} [{offset}, +{len}) lies outside the {length}-byte file");
                sections[i] = (offset, len);
            }
            return (h, map, sections);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>Checks that a section has exactly the expected size.</summary>
    public static void ExpectLength(string path, (long Offset, long Length)[] sections, Section section, long expected)
    {
        if (sections[(int)section].Length != expected)
            throw Corrupt(path, $"section {section} is {sections[(int)section].Length} bytes, expected {expected}");
    }
}

/// <summary>
/// A whole file mapped copy-on-write: reads come straight from the page cache, and a write to the index
/// touches only private copies of the pages it changes, never the file.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private bool _disposed;

    public MappedFile(string path, long length)
    {
        _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.CopyOnWrite);
        _view = _file.CreateViewAccessor(0, length, MemoryMappedFileAccess.CopyOnWrite);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        Pointer = p + _view.PointerOffset;
        Length = length;
    }

    public byte* Pointer { get; }
    public long Length { get; }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}
