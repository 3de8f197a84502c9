using System.Runtime.InteropServices;

namespace Funnel.Index;

/// <summary>
/// Fixed-size rows in unmanaged chunks. Growing adds chunks and publishes a longer chunk table, so a row's
/// address never changes and readers need no lock: a reader that learned a slot number after the slot was
/// created (through a release/acquire pair) also sees the table that holds its chunk. Chunks either belong to
/// this store or point into a memory-mapped file (full chunks only; the partial tail chunk is copied so that
/// appending never writes past the mapping).
/// </summary>
internal sealed unsafe partial class RowStore : IDisposable
{
    /// <summary>Chunks are 2 MiB-aligned so that, on Linux, the kernel can back them with transparent huge pages.</summary>
    private const int Alignment = 2 << 20;
    private const int MadviseHugePage = 14;
    private readonly int _chunkShift;
    private readonly int _chunkMask;
    private readonly List<nint> _owned = [];
    private nint[] _chunks = [];

    public RowStore(int rowBytes)
    {
        RowBytes = rowBytes;
        // About 16 MiB per chunk. Graph search reads rows at random, so with 4 KiB pages nearly every distance
        // costs a TLB miss once the index outgrows the TLB's reach (a few MiB); huge pages remove most of them.
        // Untouched pages of a chunk are never made resident, so a tiny index stays small.
        _chunkShift = Math.Clamp(24 - (int)Math.Log2(Math.Max(1, rowBytes)), 4, 24);
        _chunkMask = (1 << _chunkShift) - 1;
    }

    public int RowBytes { get; }

    public int CapacityRows => Volatile.Read(ref _chunks).Length << _chunkShift;

    public byte* Row(int slot)
    {
        var chunks = Volatile.Read(ref _chunks);
        return (byte*)chunks[slot >> _chunkShift] + (nint)(slot & _chunkMask) * RowBytes;
    }

    /// <summary>Makes rows [0, rows) addressable. Callers serialise growth.</summary>
    public void EnsureCapacity(int rows)
    {
        var chunks = _chunks;
        int need = (int)(((long)rows + _chunkMask) >> _chunkShift);
        if (need <= chunks.Length) return;
        var grown = new nint[need];
        chunks.CopyTo(grown, 0);
        for (int c = chunks.Length; c < grown.Length; c++) grown[c] = Allocate();
        Volatile.Write(ref _chunks, grown);
    }

    /// <summary>Adopts <paramref name="rows"/> rows laid out contiguously at <paramref name="source"/> (a mapped
    /// file): full chunks in place, or all of them copied into owned memory when <paramref name="copy"/>.</summary>
    public void Adopt(byte* source, int rows, bool copy)
    {
        if (_chunks.Length != 0) throw new InvalidOperationException("Adopt needs an empty store");
        int full = copy ? 0 : rows >> _chunkShift;
        int tail = rows - (full << _chunkShift);
        var chunks = new nint[full + (int)(((long)tail + _chunkMask) >> _chunkShift)];
        long chunkBytes = (long)RowBytes << _chunkShift;
        for (int c = 0; c < full; c++) chunks[c] = (nint)(source + c * chunkBytes);
        for (int c = full; c < chunks.Length; c++)
        {
            chunks[c] = Allocate();
            long bytes = Math.Min(chunkBytes, (long)(rows - (c << _chunkShift)) * RowBytes);
            Buffer.MemoryCopy(source + c * chunkBytes, (void*)chunks[c], chunkBytes, bytes);
        }
        Volatile.Write(ref _chunks, chunks);
    }

    /// <summary>Writes rows [0, rows) contiguously.</summary>
    public void WriteTo(Stream stream, int rows)
    {
        int chunkRows = 1 << _chunkShift;
        for (int start = 0, c = 0; start < rows; start += chunkRows, c++)
            stream.Write(new ReadOnlySpan<byte>((void*)_chunks[c], Math.Min(chunkRows, rows - start) * RowBytes));
    }

    private nint Allocate()
    {
        // Not zeroed: every row is fully written before its slot is published.
        nuint bytes = (nuint)((long)RowBytes << _chunkShift);
        var p = (nint)NativeMemory.AlignedAlloc(bytes, Alignment);
        // Advice only: where THP is off or madvise is missing the chunk simply keeps small pages.
        if (OperatingSystem.IsLinux() && bytes >= Alignment)
        {
            try { _ = Madvise(p, bytes & ~(nuint)(Alignment - 1), MadviseHugePage); }
            catch (EntryPointNotFoundException) { }
            catch (DllNotFoundException) { }
        }
        _owned.Add(p);
        return p;
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nint address, nuint length, int advice);

    public void Dispose()
    {
        foreach (var p in _owned) NativeMemory.AlignedFree((void*)p);
        _owned.Clear();
        _chunks = [];
    }
}
