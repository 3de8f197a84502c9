using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Funnel.Numerics;

namespace Funnel.Index;

/// <summary>
/// The node table shared by <see cref="FlatIndex"/> and <see cref="HnswIndex"/>: one fixed-size row per slot,
/// <c>[vector | id:long | state:int | upperStart:int | graph tail]</c>, padded to 64 bytes so vectors start on a
/// cache line. The vector is 4·d float bytes, or d int8 codes + scale + ‖x‖². With int8 and full precision kept,
/// the floats live in a second row store so that a mapped file leaves them on disk until rescoring reads them.
/// <para>
/// Concurrency: a slot's state is a seqlock. Bit 0 = being written, bit 1 = removed, bits 2.. = generation.
/// Exactly one writer owns a slot at a time (the caller holds the id's stripe lock, and a removed slot is only
/// handed out again through the free list under the gate). Readers traverse rows without locks; they only
/// trust (id, score) pairs read between two equal, even state values (<see cref="TryScore"/>).
/// </para>
/// </summary>
internal sealed unsafe class VectorStorage : IDisposable
{
    public const int Writing = 1, Removed = 2, GenerationStep = 4;

    /// <summary>How many rows ahead of the one being read a scan asks the CPU for (graph search and rescoring).</summary>
    public const int PrefetchAhead = 3;
    private const int InfoBytes = 16;

    private readonly Lock _gate = new();
    private readonly Lock[] _idLocks = Enumerable.Range(0, 256).Select(_ => new Lock()).ToArray();
    private readonly Dictionary<long, int> _slotById = [];
    private readonly Stack<int> _free = [];
    private IReadOnlyDictionary<string, string>?[] _metadata = [];
    private int _slotCount;
    private int _liveCount;
    private int _freeCount;
    private MappedFile? _mapped;

    public VectorStorage(int dimension, DistanceMetric metric, VectorQuantization quantization, bool keepFullPrecision, int tailBytes)
    {
        if (dimension is < 1 or > 65536) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "dimension must be between 1 and 65536");
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "unknown distance metric");
        Dimension = dimension;
        Metric = metric;
        Quantization = quantization;
        VectorBytes = quantization == VectorQuantization.Int8 ? Align(dimension, 4) + 8 : 4 * dimension;
        InfoOffset = Align(VectorBytes, 8);
        TailOffset = InfoOffset + InfoBytes;
        Rows = new RowStore(Align(TailOffset + tailBytes, 64));
        if (quantization == VectorQuantization.Int8 && keepFullPrecision) Full = new RowStore(4 * dimension);
    }

    public int Dimension { get; }
    public DistanceMetric Metric { get; }
    public VectorQuantization Quantization { get; }
    public int VectorBytes { get; }
    public int InfoOffset { get; }
    public int TailOffset { get; }
    public RowStore Rows { get; }
    public RowStore? Full { get; }
    public int SlotCount => Volatile.Read(ref _slotCount);
    public int LiveCount => Volatile.Read(ref _liveCount);
    public int FreeCount => Volatile.Read(ref _freeCount);

    /// <summary>True while some slot is removed; searches skip the per-node state check when none is.</summary>
    public bool HasRemoved => Volatile.Read(ref _freeCount) > 0;

    private static int Align(int n, int a) => (n + a - 1) / a * a;

    public Lock IdLock(long id) => _idLocks[(int)((ulong)(id * unchecked((long)0x9E3779B97F4A7C15)) >> 56)];

    public long* IdPtr(int slot) => (long*)(Rows.Row(slot) + InfoOffset);
    public int* StatePtr(int slot) => (int*)(Rows.Row(slot) + InfoOffset + 8);
    public int* UpperStartPtr(int slot) => (int*)(Rows.Row(slot) + InfoOffset + 12);
    public byte* Tail(int slot) => Rows.Row(slot) + TailOffset;
    public bool IsRemoved(int slot) => (Volatile.Read(ref *StatePtr(slot)) & Removed) != 0;
    public IReadOnlyDictionary<string, string>? MetadataOf(int slot) => slot < Volatile.Read(ref _metadata).Length ? _metadata[slot] : null;

    // ---------------------------------------------------------------- slots

    /// <summary>What <see cref="Claim"/> decided for an id.</summary>
    public readonly record struct SlotClaim(int Slot, bool Existing, bool Reused);

    /// <summary>The id's slot: its current one, a removed slot from the free list, or a fresh one
    /// (<paramref name="newSlotReady"/> prepares a fresh slot's graph tail before it counts). Caller holds <see cref="IdLock"/>.</summary>
    public SlotClaim Claim(long id, Action<int>? newSlotReady = null)
    {
        lock (_gate)
        {
            if (_slotById.TryGetValue(id, out int existing)) return new(existing, true, false);
            bool reused = _free.TryPop(out int slot);
            if (reused) Volatile.Write(ref _freeCount, _free.Count);
            if (!reused)
            {
                slot = _slotCount;
                if (slot == int.MaxValue - 1) throw new InvalidOperationException("the index is full (2³¹ slots)");
                Rows.EnsureCapacity(slot + 1);
                Full?.EnsureCapacity(slot + 1);
                if (slot >= _metadata.Length)
                {
                    var grown = new IReadOnlyDictionary<string, string>?[Math.Max(16, _metadata.Length * 2)];
                    _metadata.CopyTo(grown, 0);
                    Volatile.Write(ref _metadata, grown);
                }
                // A fresh slot starts removed and even, so readers skip it until its first write completes.
                *StatePtr(slot) = Removed;
                *IdPtr(slot) = id;
                *UpperStartPtr(slot) = -1;
                newSlotReady?.Invoke(slot);
                Volatile.Write(ref _slotCount, slot + 1);
            }
            _slotById[id] = slot;
            _liveCount++;
            return new(slot, false, reused);
        }
    }

    /// <summary>Writes id, vector and metadata of a slot under its seqlock and marks it live.</summary>
    public void Write(int slot, long id, ReadOnlySpan<float> prepared, IReadOnlyDictionary<string, string>? metadata)
    {
        int* state = StatePtr(slot);
        int s = Volatile.Read(ref *state);
        // Full fence: the odd state must be visible before any data store.
        Interlocked.Exchange(ref *state, s | Writing);
        *IdPtr(slot) = id;
        byte* row = Rows.Row(slot);
        if (Quantization == VectorQuantization.Int8)
        {
            Quantize(prepared, (sbyte*)row, out float scale, out float norm2);
            *(float*)(row + VectorBytes - 8) = scale;
            *(float*)(row + VectorBytes - 4) = norm2;
            if (Full is not null) prepared.CopyTo(new Span<float>(Full.Row(slot), Dimension));
        }
        else prepared.CopyTo(new Span<float>(row, Dimension));
        Volatile.Write(ref _metadata[slot], metadata);
        Volatile.Write(ref *state, (s & ~(Writing | Removed)) + GenerationStep);
    }

    /// <summary>Marks the id's slot removed and frees it for reuse. Caller holds <see cref="IdLock"/>.</summary>
    public bool Remove(long id, out int slot)
    {
        lock (_gate)
        {
            if (!_slotById.Remove(id, out slot)) return false;
            int* state = StatePtr(slot);
            Volatile.Write(ref *state, (Volatile.Read(ref *state) | Removed) + GenerationStep);
            _metadata[slot] = null;
            _free.Push(slot);
            Volatile.Write(ref _freeCount, _free.Count);
            _liveCount--;
            return true;
        }
    }

    public bool TryGetSlot(long id, out int slot)
    {
        lock (_gate) return _slotById.TryGetValue(id, out slot);
    }

    public long[] Ids()
    {
        lock (_gate) return [.. _slotById.Keys];
    }

    public float[]? ReadVector(long id)
    {
        while (true)
        {
            if (!TryGetSlot(id, out int slot)) return null;
            int s1 = Volatile.Read(ref *StatePtr(slot));
            var v = new float[Dimension];
            CopyExactVector(slot, v);
            Interlocked.MemoryBarrier();
            if ((s1 & (Writing | Removed)) == 0 && Volatile.Read(ref *StatePtr(slot)) == s1 && *IdPtr(slot) == id) return v;
        }
    }

    private void CopyExactVector(int slot, Span<float> dst)
    {
        if (Quantization == VectorQuantization.None) new ReadOnlySpan<float>(Rows.Row(slot), Dimension).CopyTo(dst);
        else if (Full is not null) new ReadOnlySpan<float>(Full.Row(slot), Dimension).CopyTo(dst);
        else
        {
            byte* row = Rows.Row(slot);
            float scale = *(float*)(row + VectorBytes - 8);
            for (int i = 0; i < Dimension; i++) dst[i] = ((sbyte*)row)[i] * scale;
        }
    }

    // ---------------------------------------------------------------- vectors and distances

    /// <summary>Checks a caller's vector and returns it as stored (normalised for cosine) in <paramref name="dst"/>.</summary>
    public void Prepare(ReadOnlySpan<float> vector, Span<float> dst, string parameter)
    {
        if (vector.Length != Dimension)
            throw new ArgumentException($"{parameter} has {vector.Length} dimensions; the index expects {Dimension}", parameter);
        for (int i = 0; i < vector.Length; i++)
            if (!float.IsFinite(vector[i])) throw new ArgumentException($"{parameter}[{i}] is {vector[i]}; vectors must be finite", parameter);
        vector.CopyTo(dst);
        if (Metric == DistanceMetric.Cosine) VectorMath.Normalize(dst);
    }

    /// <summary>Symmetric int8 code of a vector: round(xᵢ / scale) with scale = max|xᵢ| / 127.</summary>
    internal static void Quantize(ReadOnlySpan<float> v, sbyte* codes, out float scale, out float norm2)
    {
        float maxAbs = v.Length == 0 ? 0 : TensorPrimitives.MaxMagnitude(v);
        maxAbs = MathF.Abs(maxAbs);
        scale = maxAbs > 0 ? maxAbs / 127f : 0f;
        float inv = maxAbs > 0 ? 127f / maxAbs : 0f;
        for (int i = 0; i < v.Length; i++) codes[i] = (sbyte)Math.Clamp(MathF.Round(v[i] * inv), -127f, 127f);
        norm2 = TensorPrimitives.Dot(v, v);
    }

    /// <summary>Binds the prepared query in the scratch's pinned buffers for the distance functions.</summary>
    public QueryRef Bind(SearchScratch scratch)
    {
        var q = new QueryRef
        {
            Vector = (float*)Unsafe.AsPointer(ref scratch.Query[0]),
            Codes = (sbyte*)Unsafe.AsPointer(ref scratch.Codes[0]),
        };
        if (Quantization == VectorQuantization.Int8) Quantize(scratch.Query, q.Codes, out q.Scale, out q.Norm2);
        return q;
    }

    /// <summary>Search distance (lower is better) from the query to a slot, on the stored representation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Distance(in QueryRef q, int slot)
    {
        byte* row = Rows.Row(slot);
        if (Quantization == VectorQuantization.None)
            return Metric == DistanceMetric.L2 ? VectorMath.L2Squared(q.Vector, (float*)row, Dimension) : -VectorMath.Dot(q.Vector, (float*)row, Dimension);
        float dot = VectorMath.DotInt8(q.Codes, (sbyte*)row, Dimension) * q.Scale * *(float*)(row + VectorBytes - 8);
        return Metric == DistanceMetric.L2 ? q.Norm2 + *(float*)(row + VectorBytes - 4) - 2 * dot : -dot;
    }

    /// <summary>Asks the CPU for the first cache line of a slot's stored vector (a hint; no-op without SSE).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PrefetchFirstLine(int slot) => PrefetchLine(Rows.Row(slot));

    /// <summary>Asks the CPU for the cache line holding <paramref name="address"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PrefetchLine(byte* address) => PrefetchLines(address, 1);

    /// <summary>Asks the CPU for every cache line of a slot's stored vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PrefetchVector(int slot) => PrefetchLines(Rows.Row(slot), VectorBytes);

    /// <summary>Asks the CPU for the cache lines of <paramref name="bytes"/> bytes from <paramref name="start"/> (a hint; no-op without SSE).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchLines(byte* start, int bytes)
    {
        if (!Sse.IsSupported) return;
        for (int offset = 0; offset < bytes; offset += 64) Sse.Prefetch0(start + offset);
    }

    /// <summary>Distance between two stored slots, on the stored representation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Distance(int a, int b)
    {
        byte* ra = Rows.Row(a), rb = Rows.Row(b);
        if (Quantization == VectorQuantization.None)
            return Metric == DistanceMetric.L2 ? VectorMath.L2Squared((float*)ra, (float*)rb, Dimension) : -VectorMath.Dot((float*)ra, (float*)rb, Dimension);
        float dot = VectorMath.DotInt8((sbyte*)ra, (sbyte*)rb, Dimension) * *(float*)(ra + VectorBytes - 8) * *(float*)(rb + VectorBytes - 8);
        return Metric == DistanceMetric.L2 ? *(float*)(ra + VectorBytes - 4) + *(float*)(rb + VectorBytes - 4) - 2 * dot : -dot;
    }

    /// <summary>Distance on full-precision floats when the index has them, else the stored representation.</summary>
    public float ExactDistance(in QueryRef q, int slot)
    {
        if (Quantization == VectorQuantization.None || Full is null) return Distance(q, slot);
        float* v = (float*)Full.Row(slot);
        return Metric == DistanceMetric.L2 ? VectorMath.L2Squared(q.Vector, v, Dimension) : -VectorMath.Dot(q.Vector, v, Dimension);
    }

    public float ScoreOf(float distance) => Metric == DistanceMetric.L2 ? -MathF.Sqrt(MathF.Max(distance, 0f)) : -distance;

    /// <summary>True when the slot is live and passes the filter (the result-side test; traversal ignores it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Accepts(int slot, VectorFilter? filter)
    {
        if ((Volatile.Read(ref *StatePtr(slot)) & (Removed | Writing)) != 0) return false;
        return filter is null || filter.Matches(*IdPtr(slot), MetadataOf(slot));
    }

    /// <summary>Reads a consistent (id, exact score) of a live slot that passes the filter; false when the slot
    /// was removed, rewritten meanwhile, or filtered out.</summary>
    public bool TryScore(in QueryRef q, int slot, VectorFilter? filter, out VectorHit hit)
    {
        hit = default;
        int* state = StatePtr(slot);
        int s1 = Volatile.Read(ref *state);
        if ((s1 & (Writing | Removed)) != 0) return false;
        long id = *IdPtr(slot);
        float score = ScoreOf(ExactDistance(q, slot));
        bool pass = filter is null || filter.Matches(id, MetadataOf(slot));
        // Full fence so the data loads above complete before the state is read again.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref *state) != s1 || !pass) return false;
        hit = new VectorHit(id, score);
        return true;
    }

    /// <summary>Turns candidates (ascending search distance) into the top-k hits: each is re-read under its
    /// seqlock and scored exactly. <paramref name="rescoreAll"/> rescans every candidate (int8 with floats),
    /// else the first k valid ones already are the answer.</summary>
    public List<VectorHit> Emit(in QueryRef q, ReadOnlySpan<int> candidates, int k, VectorFilter? filter, bool rescoreAll)
    {
        var hits = new List<VectorHit>(Math.Min(k, candidates.Length));
        // Rescoring reads each candidate's floats at a random address: keep the next few on their way.
        RowStore? full = rescoreAll ? Full : null;
        for (int i = 0; i < candidates.Length; i++)
        {
            if (!rescoreAll && hits.Count == k) break;
            if (full is not null && i + PrefetchAhead < candidates.Length)
            {
                PrefetchLines(full.Row(candidates[i + PrefetchAhead]), full.RowBytes);
                PrefetchLine((byte*)IdPtr(candidates[i + PrefetchAhead]));
            }
            if (TryScore(q, candidates[i], filter, out var hit)) hits.Add(hit);
        }
        hits.Sort(static (a, b) => b.Score != a.Score ? b.Score.CompareTo(a.Score) : a.Id.CompareTo(b.Id));
        if (hits.Count > k) hits.RemoveRange(k, hits.Count - k);
        return hits;
    }

    /// <summary>Exact scan of slots [start, end) into a bounded heap of the best <c>heap.Capacity</c> accepted slots.</summary>
    public void Scan(in QueryRef q, int start, int end, VectorFilter? filter, BoundedHeap heap)
    {
        for (int slot = start; slot < end; slot++)
        {
            if (!Accepts(slot, filter)) continue;
            heap.Offer(Distance(q, slot), slot);
        }
    }

    /// <summary>
    /// Exact top-k: every accepted slot is scored into a bounded heap (one per thread over contiguous slot ranges,
    /// merged after). With int8 codes and floats kept, a few times k are kept by code distance and rescored exactly.
    /// </summary>
    public List<VectorHit> ExactSearch(in QueryRef q, int k, VectorFilter? filter, bool rescore, SearchScratch scratch, int threads)
    {
        int capacity = rescore ? Math.Max(4 * k, k + 16) : k;
        int slots = SlotCount;
        var heap = scratch.Results;
        heap.Reset(capacity);
        if (threads <= 1) Scan(q, 0, slots, filter, heap);
        else
        {
            var heaps = new BoundedHeap[threads];
            var bound = q;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                var local = heaps[t] = new BoundedHeap();
                local.Reset(capacity);
                Scan(bound, (int)((long)slots * t / threads), (int)((long)slots * (t + 1) / threads), filter, local);
            });
            var slotBuf = new int[capacity];
            var distBuf = new float[capacity];
            foreach (var local in heaps)
            {
                int n = local.DrainAscending(slotBuf, distBuf);
                for (int i = 0; i < n; i++) heap.Offer(distBuf[i], slotBuf[i]);
            }
        }
        if (scratch.Slots.Length < capacity) { scratch.Slots = new int[capacity]; scratch.Dists = new float[capacity]; }
        int count = heap.DrainAscending(scratch.Slots, scratch.Dists);
        return Emit(q, scratch.Slots.AsSpan(0, count), k, filter, rescore);
    }

    /// <summary>Fraction of live slots that pass the filter, from a deterministic sample of up to
    /// <paramref name="samples"/> slots (exact when the index is that small).</summary>
    public double EstimateSelectivity(VectorFilter filter, int samples)
    {
        int n = SlotCount;
        if (n == 0) return 0;
        int step = Math.Max(1, n / samples), live = 0, pass = 0;
        for (int slot = step / 2; slot < n; slot += step)
        {
            if (IsRemoved(slot)) continue;
            live++;
            if (filter.Matches(*IdPtr(slot), MetadataOf(slot))) pass++;
        }
        return live == 0 ? 0 : (double)pass / live;
    }

    // ---------------------------------------------------------------- persistence support

    public long MetadataBytes()
    {
        long bytes = 0;
        var md = Volatile.Read(ref _metadata);
        int n = SlotCount;
        for (int i = 0; i < n && i < md.Length; i++)
            if (md[i] is { } m) foreach (var (key, value) in m) bytes += 2L * (key.Length + value.Length) + 64;
        return bytes + 8L * md.Length;
    }

    public long IdMapBytes() => LiveCount * 24L + FreeCount * 4L;

    public void WriteMetadata(BinaryWriter w)
    {
        var md = _metadata;
        int n = _slotCount, present = 0;
        for (int i = 0; i < n; i++) if (md[i] is not null) present++;
        w.Write(present);
        for (int i = 0; i < n; i++)
        {
            if (md[i] is not { } m) continue;
            w.Write(i);
            w.Write(m.Count);
            foreach (var (key, value) in m) { w.Write(key); w.Write(value); }
        }
    }

    /// <summary>Restores slots from adopted rows: rebuilds the id map, the free list and metadata, checking
    /// that live ids are unique and states well formed. Throws <see cref="InvalidDataException"/> otherwise.</summary>
    public void Restore(int slotCount, BinaryReader metadata, MappedFile? mapped, string path)
    {
        _mapped = mapped;
        _slotCount = slotCount;
        _metadata = new IReadOnlyDictionary<string, string>?[Math.Max(16, slotCount)];
        for (int slot = 0; slot < slotCount; slot++)
        {
            int state = *StatePtr(slot);
            if ((state & Writing) != 0) throw IndexFile.Corrupt(path, $"slot {slot} was saved mid-write");
            if ((state & Removed) != 0) { _free.Push(slot); _freeCount++; continue; }
            if (!_slotById.TryAdd(*IdPtr(slot), slot)) throw IndexFile.Corrupt(path, $"id {*IdPtr(slot)} appears twice");
        }
        _liveCount = _slotById.Count;
        int present = metadata.ReadInt32();
        if (present < 0 || present > slotCount) throw IndexFile.Corrupt(path, $"metadata count {present} out of range");
        for (int e = 0; e < present; e++)
        {
            int slot = metadata.ReadInt32(), pairs = metadata.ReadInt32();
            if ((uint)slot >= (uint)slotCount || pairs < 0 || pairs > 1_000_000) throw IndexFile.Corrupt(path, $"metadata entry {e} is malformed");
            var m = new Dictionary<string, string>(pairs, StringComparer.Ordinal);
            for (int p = 0; p < pairs; p++) m[metadata.ReadString()] = metadata.ReadString();
            _metadata[slot] = m;
        }
    }

    public void Dispose()
    {
        Rows.Dispose();
        Full?.Dispose();
        _mapped?.Dispose();
    }
}

/// <summary>A bound query: the prepared float vector and, for int8 storage, its codes, scale and ‖q‖².</summary>
internal unsafe struct QueryRef
{
    public float* Vector;
    public sbyte* Codes;
    public float Scale;
    public float Norm2;
}
