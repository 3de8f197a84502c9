using System.IO.MemoryMappedFiles;

namespace Funnel.Inference.Weights;

/// <summary>
/// A whole file mapped read-only into memory, so weight files are read in place and never copied into
/// managed memory as a whole. The bytes stay valid until the mapping is disposed.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;

    public string Path { get; }

    public long Length { get; }

    private MappedFile(string path, long length, MemoryMappedFile map, MemoryMappedViewAccessor view)
    {
        Path = path;
        Length = length;
        _map = map;
        _view = view;
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + view.PointerOffset;
    }

    /// <summary>Maps <paramref name="path"/>; <paramref name="kind"/> names what the file should be in errors.</summary>
    public static MappedFile Open(string path, string kind)
    {
        if (!File.Exists(path)) throw new ModelFormatException($"{path}: {kind} not found");
        long length;
        using (var handle = File.OpenHandle(path)) // FileInfo.Length would measure a symlink (as in the Hugging Face cache), not its blob
            length = RandomAccess.GetLength(handle);
        if (length == 0) throw new ModelFormatException($"{path}: empty file (expected {kind})");
        // FileShare.Read: several encoders (or processes) may load the same weights at once.
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        MemoryMappedFile map;
        try
        {
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        try
        {
            return new MappedFile(path, length, map, map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read));
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>The bytes [offset, offset + length); the caller has checked the range against <see cref="Length"/>.</summary>
    public ReadOnlySpan<byte> Span(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset + length > Length || length > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, {offset + length}) is outside {Path} ({Length} bytes)");
        return new ReadOnlySpan<byte>(_base + offset, (int)length);
    }

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
