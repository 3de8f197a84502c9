using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Funnel.Index;

/// <summary>Max-heap that keeps the <see cref="Capacity"/> smallest distances offered (the k best).</summary>
internal sealed class BoundedHeap
{
    private float[] _dist = new float[16];
    private int[] _slot = new int[16];

    public int Count { get; private set; }
    public int Capacity { get; private set; }

    /// <summary>The largest kept distance; only meaningful when <see cref="Count"/> &gt; 0.</summary>
    public float Worst => _dist[0];

    public bool IsFull => Count == Capacity;

    public void Reset(int capacity)
    {
        Capacity = capacity;
        Count = 0;
        if (_dist.Length < capacity) { _dist = new float[capacity]; _slot = new int[capacity]; }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Offer(float dist, int slot)
    {
        if (Count < Capacity)
        {
            int i = Count++;
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (_dist[parent] >= dist) break;
                _dist[i] = _dist[parent]; _slot[i] = _slot[parent];
                i = parent;
            }
            _dist[i] = dist; _slot[i] = slot;
            return true;
        }
        if (dist >= _dist[0]) return false;
        SiftDown(dist, slot);
        return true;
    }

    private void SiftDown(float dist, int slot)
    {
        int i = 0, n = Count;
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && _dist[child + 1] > _dist[child]) child++;
            if (_dist[child] <= dist) break;
            _dist[i] = _dist[child]; _slot[i] = _slot[child];
            i = child;
        }
        _dist[i] = dist; _slot[i] = slot;
    }

    /// <summary>Empties the heap into <paramref name="slots"/>/<paramref name="dists"/> in ascending distance order; returns the count.</summary>
    public int DrainAscending(Span<int> slots, Span<float> dists)
    {
        int n = Count;
        for (int i = n - 1; i >= 0; i--)
        {
            slots[i] = _slot[0]; dists[i] = _dist[0];
            int last = --Count;
            if (last > 0) SiftDown(_dist[last], _slot[last]);
        }
        return n;
    }
}

/// <summary>Min-heap of (distance, slot): the candidate frontier of a graph search.</summary>
internal sealed class CandidateHeap
{
    private float[] _dist = new float[64];
    private int[] _slot = new int[64];

    public int Count { get; private set; }
    public float MinDistance => _dist[0];
    /// <summary>The slot with the smallest distance; only meaningful when <see cref="Count"/> &gt; 0.</summary>
    public int PeekSlot => _slot[0];

    public void Clear() => Count = 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Push(float dist, int slot)
    {
        if (Count == _dist.Length) { Array.Resize(ref _dist, Count * 2); Array.Resize(ref _slot, Count * 2); }
        int i = Count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (_dist[parent] <= dist) break;
            _dist[i] = _dist[parent]; _slot[i] = _slot[parent];
            i = parent;
        }
        _dist[i] = dist; _slot[i] = slot;
    }

    public int Pop()
    {
        int top = _slot[0];
        int n = --Count;
        float dist = _dist[n];
        int slot = _slot[n], i = 0;
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && _dist[child + 1] < _dist[child]) child++;
            if (_dist[child] >= dist) break;
            _dist[i] = _dist[child]; _slot[i] = _slot[child];
            i = child;
        }
        _dist[i] = dist; _slot[i] = slot;
        return top;
    }
}

/// <summary>
/// Per-search working memory, pooled per index so searches allocate nothing but their result list.
/// The visited set is a bitset cleared at the start of each search: at 1M slots that is 128 KiB, which stays in
/// L2 (a 16-bit stamp per slot would need no clearing but takes 2 MiB of cache; the bitset is ~10 % faster there).
/// </summary>
internal sealed class SearchScratch
{
    private ulong[] _bits = [];
    private int _clearedWords;

    public readonly CandidateHeap Candidates = new();
    public readonly BoundedHeap Results = new();
    /// <summary>The prepared query and its int8 codes, in pinned arrays so distance kernels take their address.</summary>
    public float[] Query = [];
    public sbyte[] Codes = [];
    public int[] Slots = new int[64];
    public float[] Dists = new float[64];
    public int[] Neighbors = new int[64];

    public void Prepare(int dimension, int slotCount, int resultCapacity)
    {
        if (Query.Length != dimension)
        {
            Query = GC.AllocateArray<float>(dimension, pinned: true);
            Codes = GC.AllocateArray<sbyte>(dimension, pinned: true);
        }
        if (Slots.Length < resultCapacity + 1) { Slots = new int[resultCapacity + 1]; Dists = new float[resultCapacity + 1]; }
        NewVisit(slotCount);
    }

    /// <summary>Starts a new visited set without touching the query buffers.</summary>
    public void NewVisit(int slotCount)
    {
        int words = (slotCount + 63) >> 6;
        if (_bits.Length < words) _bits = new ulong[Math.Max(words, _bits.Length * 2)];
        else Array.Clear(_bits, 0, words);
        _clearedWords = words;
        Candidates.Clear();
    }

    /// <summary>Marks the slot visited; false when it already was. Slots created after <see cref="Prepare"/> grow the set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Visit(int slot)
    {
        int word = slot >> 6;
        if ((uint)word >= (uint)_clearedWords) Grow(word);
        ulong mask = 1UL << slot;
        ref ulong w = ref _bits[word];
        if ((w & mask) != 0) return false;
        w |= mask;
        return true;
    }

    private void Grow(int word)
    {
        if (word >= _bits.Length) Array.Resize(ref _bits, Math.Max(word + 1, _bits.Length * 2));
        Array.Clear(_bits, _clearedWords, word + 1 - _clearedWords);
        _clearedWords = word + 1;
    }
}

/// <summary>A pool of <see cref="SearchScratch"/>; rent in a using.</summary>
internal sealed class ScratchPool
{
    private readonly ConcurrentBag<SearchScratch> _bag = [];

    public Lease Rent() => new(this, _bag.TryTake(out var s) ? s : new SearchScratch());

    public readonly struct Lease(ScratchPool pool, SearchScratch scratch) : IDisposable
    {
        public SearchScratch Scratch { get; } = scratch;
        public void Dispose() => pool._bag.Add(Scratch);
    }
}
