using System.Runtime.CompilerServices;

namespace Funnel.Index;

/// <summary>
/// Hierarchical navigable small world graph (Malkov &amp; Yashunin, 2018), laid out as hnswlib does: each slot's
/// row holds its vector, id, state and its layer-0 link block <c>[count | level«16][M0 links]</c>; nodes above
/// layer 0 own <c>level</c> consecutive blocks <c>[count][M links]</c> in a separate upper-link store.
/// <para>Invariants (checked on open, kept by every write):</para>
/// <list type="bullet">
/// <item>every link at layer l points at an existing slot (live or removed) whose level is ≥ l, never at itself;</item>
/// <item>a node has at most M0 = 2M links at layer 0 and at most M at each upper layer, without duplicates;</item>
/// <item>a slot's level never changes once drawn (a reused slot keeps it), so its upper blocks stay valid;</item>
/// <item>the entry point has the maximum level of all slots; it is -1 only while the index has no slot;</item>
/// <item>a slot's in-link count is the number of layer-0 lists that hold it, and pruning never takes a node's last
/// layer-0 in-link (but for a slot being relinked): a node that something once linked to stays reachable.</item>
/// </list>
/// <para>
/// Concurrency: inserts link in parallel. A link list is only changed under its slot's stripe lock, and a writer
/// never holds two stripes at once (own lists first, then each neighbour in turn), so there is no lock order to get
/// wrong. An insert writes all its own lists before any neighbour links back to it, so nothing can reach a node
/// whose lists are still to be written (and then overwrite links other inserts added to them). Readers never lock:
/// they read a list's count with acquire semantics and its entries with plain loads.
/// Every value ever stored in a list is a valid slot of sufficient level, so a reader racing with a rewrite may see
/// a mix of old and new entries but never an invalid one; a node's row is fully written before its slot number is
/// published into any list (entry stores are releases), and on x64/ARM64 the dependent load of the row through
/// that number is ordered after it. Results are re-validated under the slot's seqlock (<see cref="VectorStorage"/>).
/// </para>
/// <para>
/// Removal is a tombstone: the node stays in the graph and is traversed but never returned, and construction does
/// not pick tombstones as new neighbours. The next insert of a new id reuses the slot: its vector is rewritten and
/// it is relinked like hnswlib's <c>updatePoint</c> (its old neighbours re-select their links from their two-hop
/// neighbourhood, then the node is connected as a fresh insert). Upserting an existing id relinks the same way.
/// </para>
/// </summary>
public sealed unsafe class HnswIndex : VectorIndex
{
    private const int LockStripes = 4096;
    private const int MaxLevel = 30;
    private const int SelectivitySamples = 512;

    private readonly Lock[] _linkLocks = Enumerable.Range(0, LockStripes).Select(_ => new Lock()).ToArray();
    private readonly Lock _entryLock = new();
    private readonly RowStore _upper;
    /// <summary>Per slot, how many layer-0 lists hold it (not persisted: counted from the lists on open).</summary>
    private readonly RowStore _inLinks = new(sizeof(int));
    private readonly double _levelMultiplier;
    private readonly int _m, _m0;
    private ulong _rngState;
    private int _upperCount;
    private int _efSearch;

    /// <summary>Entry point: (maxLevel « 32) | slot, or -1 when empty; one word so readers see a matching pair.</summary>
    private long _entry = -1;

    /// <summary>An empty HNSW index.</summary>
    public HnswIndex(int dimension, DistanceMetric metric = DistanceMetric.Cosine, HnswOptions? options = null)
        : this(CreateStorage(dimension, metric, options ??= new HnswOptions()), options)
    {
    }

    private HnswIndex(VectorStorage storage, HnswOptions options) : base(storage)
    {
        Options = options;
        _m = options.M;
        _m0 = 2 * options.M;
        _efSearch = options.EfSearch;
        _levelMultiplier = 1 / Math.Log(options.M);
        _rngState = options.Seed;
        _upper = new RowStore(4 * (1 + _m));
    }

    private static VectorStorage CreateStorage(int dimension, DistanceMetric metric, HnswOptions options)
    {
        options.Validate();
        return new VectorStorage(dimension, metric, options.Quantization, options.KeepFullPrecision, 4 * (1 + 2 * options.M));
    }

    /// <summary>The options the index was built with (<see cref="HnswOptions.EfSearch"/> as constructed).</summary>
    public HnswOptions Options { get; }

    /// <summary>Candidate list size of searches; may be changed at any time.</summary>
    public int EfSearch
    {
        get => Volatile.Read(ref _efSearch);
        set => Volatile.Write(ref _efSearch, value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(EfSearch), value, "EfSearch must be at least 1"));
    }

    /// <summary>Number of removed slots waiting to be reused.</summary>
    public int TombstoneCount => Storage.FreeCount;

    /// <inheritdoc/>
    public override IndexMemoryReport Memory => BaseMemory((long)Volatile.Read(ref _upperCount) * _upper.RowBytes);

    // ---------------------------------------------------------------- link lists

    private int* LinkList(int slot, int level) =>
        level == 0 ? (int*)Storage.Tail(slot) : (int*)_upper.Row(*Storage.UpperStartPtr(slot) + level - 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int CountOf(int* list, int max) => Math.Min(Volatile.Read(ref *list) & 0xFFFF, max);

    private int LevelOf(int slot) => (*(int*)Storage.Tail(slot) >> 16) & 0xFF;

    private ref int InLinks(int slot) => ref *(int*)_inLinks.Row(slot);

    private Lock LinkLock(int slot) => _linkLocks[slot & (LockStripes - 1)];

    /// <summary>Replaces a list's entries; the caller holds the slot's stripe lock.</summary>
    private static void WriteList(int* list, ReadOnlySpan<int> entries)
    {
        for (int i = 0; i < entries.Length; i++) Volatile.Write(ref list[1 + i], entries[i]);
        Volatile.Write(ref *list, (*list & ~0xFFFF) | entries.Length);
    }

    /// <summary>
    /// Replaces a list's entries with <paramref name="selected"/>; the caller holds the slot's stripe lock. At layer 0
    /// it keeps the in-link counts, and an entry it would drop that is the last layer-0 in-link of its node stays in the
    /// list instead: in free room, else in place of a new entry or of an old one that other lists also hold (never of
    /// <paramref name="pinned"/>). Dropping decrements first and then looks at the result, so two lists pruning the same
    /// node at once cannot both take its last in-link. <paramref name="relinked"/>, a slot about to be relinked, may lose
    /// all of them.
    /// </summary>
    private void ReplaceList(int* list, int level, ReadOnlySpan<int> selected, int pinned = -1, int relinked = -1)
    {
        if (level > 0)
        {
            WriteList(list, selected);
            return;
        }
        int oldCount = CountOf(list, _m0);
        Span<int> old = stackalloc int[oldCount];
        for (int i = 0; i < oldCount; i++) old[i] = list[1 + i];
        Span<int> kept = stackalloc int[_m0];
        selected.CopyTo(kept);
        int count = selected.Length;
        foreach (int dropped in old)
        {
            if (kept[..count].Contains(dropped)) continue;
            if (Interlocked.Decrement(ref InLinks(dropped)) > 0 || dropped == relinked) continue;
            int place = count < _m0 ? count++ : -1;
            for (int i = count - 1; place < 0 && i >= 0; i--)
            {
                int candidate = kept[i];
                if (candidate == pinned) continue;
                if (!old.Contains(candidate)) place = i; // new here: not counted yet
                else if (Interlocked.Decrement(ref InLinks(candidate)) > 0) place = i;
                else Interlocked.Increment(ref InLinks(candidate));
            }
            if (place < 0) continue; // every entry is some node's last way in: the rare loss hnswlib always takes
            kept[place] = dropped;
            Interlocked.Increment(ref InLinks(dropped));
        }
        foreach (int added in kept[..count])
            if (!old.Contains(added)) Interlocked.Increment(ref InLinks(added));
        WriteList(list, kept[..count]);
    }

    /// <summary>Draws a level (−ln U · mL, mL = 1/ln M) and lays out a fresh slot's link blocks. Runs under the storage gate.</summary>
    private void InitFreshSlot(int slot)
    {
        _rngState += 0x9E3779B97F4A7C15;
        ulong z = _rngState;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        z ^= z >> 31;
        double u = ((z >> 11) + 1) * (1.0 / (1UL << 53));
        int level = Math.Min(MaxLevel, (int)(-Math.Log(u) * _levelMultiplier));
        *(int*)Storage.Tail(slot) = level << 16;
        _inLinks.EnsureCapacity(slot + 1);
        InLinks(slot) = 0;
        if (level > 0)
        {
            int start = _upperCount;
            _upper.EnsureCapacity(start + level);
            for (int l = 0; l < level; l++) *(int*)_upper.Row(start + l) = 0;
            Volatile.Write(ref _upperCount, start + level);
            *Storage.UpperStartPtr(slot) = start;
        }
    }

    // ---------------------------------------------------------------- insert

    private protected override void UpsertPrepared(long id, float[] prepared, IReadOnlyDictionary<string, string>? metadata)
    {
        var claim = Storage.Claim(id, InitFreshSlot);
        using var lease = Pool.Rent();
        var scratch = lease.Scratch;
        scratch.Prepare(Dimension, Storage.SlotCount, Options.EfConstruction);
        prepared.CopyTo(scratch.Query, 0);
        var query = Storage.Bind(scratch);
        if (claim.Existing || claim.Reused) RepairOldNeighbours(claim.Slot);
        Storage.Write(claim.Slot, id, prepared, metadata);
        Link(claim.Slot, query, scratch);
    }

    /// <summary>Connects a slot into the graph (Algorithm 1): greedy descent to its level, then at each layer an
    /// efConstruction search, the neighbour heuristic, and back links pruned by the heuristic.</summary>
    private void Link(int slot, in QueryRef q, SearchScratch scratch)
    {
        int level = LevelOf(slot);
        long entry = Volatile.Read(ref _entry);
        if (entry < 0)
        {
            lock (_entryLock)
            {
                entry = _entry;
                if (entry < 0) { Volatile.Write(ref _entry, ((long)level << 32) | (uint)slot); return; }
            }
        }
        int maxLevel = (int)(entry >> 32);
        int ep = (int)entry, top = maxLevel;
        // Relinking the entry point itself: start from its highest neighbour instead (links at layer l point at
        // nodes of level >= l, so the walk can start at that layer). A lone node has nothing to link to.
        if (ep == slot)
        {
            ep = -1;
            for (; top >= 0 && ep < 0; top--)
                if (CountOf(LinkList(slot, top), top == 0 ? _m0 : _m) > 0) ep = LinkList(slot, top)[1];
            if (ep < 0) return;
            top++;
        }
        float epDist = Storage.Distance(q, ep);
        for (int l = top; l > level; l--) Greedy(q, ref ep, ref epDist, l);
        // Choose the neighbours on every layer first and publish afterwards, own lists before any back link: once a
        // neighbour links here, other inserts can reach this node and add their links to its lists, and writing
        // the node's own list after that would erase them (their only way in, if this node was their one neighbour).
        int linked = Math.Min(level, top);
        var chosen = new int[linked + 1][];
        for (int l = linked; l >= 0; l--)
        {
            int found = SearchLayer(q, ep, epDist, Options.EfConstruction, l, scratch, filter: null, skipRemoved: true);
            int count = SelectNeighbours(slot, scratch.Slots.AsSpan(0, found), scratch.Dists.AsSpan(0, found), _m, scratch.Neighbors);
            chosen[l] = scratch.Neighbors.AsSpan(0, count).ToArray();
            if (found > 0) { ep = scratch.Slots[0]; epDist = scratch.Dists[0]; }
        }
        lock (LinkLock(slot))
            for (int l = 0; l <= linked; l++) ReplaceList(LinkList(slot, l), l, chosen[l]);
        for (int l = 0; l <= linked; l++)
        {
            bool reachable = false;
            foreach (int n in chosen[l]) reachable |= Connect(n, slot, l);
            // If every neighbour pruned the link back, nothing leads here: a search could never return this node. That
            // happens in parallel builds (neighbours chosen from a graph that others have meanwhile filled with closer
            // nodes) and among near-duplicates; the nearest neighbour keeps the link then.
            if (!reachable && chosen[l].Length > 0) Connect(chosen[l][0], slot, l, force: true);
        }
        if (level > maxLevel)
            lock (_entryLock)
                if (level > (int)(_entry >> 32)) Volatile.Write(ref _entry, ((long)level << 32) | (uint)slot);
    }

    /// <summary>Adds <paramref name="from"/> → <paramref name="to"/> at a layer, pruning with the heuristic when full;
    /// false when the heuristic dropped <paramref name="to"/>. With <paramref name="force"/> it is kept regardless,
    /// in place of the farthest link the heuristic kept.</summary>
    private bool Connect(int from, int to, int level, bool force = false)
    {
        int max = level == 0 ? _m0 : _m;
        lock (LinkLock(from))
        {
            int* list = LinkList(from, level);
            int count = CountOf(list, max);
            for (int i = 0; i < count; i++) if (list[1 + i] == to) return true;
            if (count < max)
            {
                Volatile.Write(ref list[1 + count], to);
                Volatile.Write(ref *list, (*list & ~0xFFFF) | (count + 1));
                if (level == 0) Interlocked.Increment(ref InLinks(to));
                return true;
            }
            Span<int> slots = stackalloc int[max + 1];
            Span<float> dists = stackalloc float[max + 1];
            for (int i = 0; i < count; i++) slots[i] = list[1 + i];
            slots[count] = to;
            for (int i = 0; i <= count; i++) dists[i] = Storage.Distance(from, slots[i]);
            dists.Sort(slots);
            Span<int> kept = stackalloc int[max];
            int n = SelectNeighbours(from, slots, dists, max, kept);
            bool linked = kept[..n].Contains(to);
            if (!linked && force)
            {
                if (n == max) n--;
                kept[n++] = to;
                linked = true;
            }
            ReplaceList(list, level, kept[..n], pinned: linked ? to : -1);
            return linked;
        }
    }

    /// <summary>
    /// The neighbour-selection heuristic (Algorithm 4, as hnswlib's getNeighborsByHeuristic2, without keeping pruned
    /// connections): walk the candidates nearest first and keep one only if it is closer to the base than to every
    /// neighbour kept so far. Candidates must be sorted by distance to <paramref name="self"/>, which is skipped.
    /// </summary>
    private int SelectNeighbours(int self, ReadOnlySpan<int> candidates, ReadOnlySpan<float> dists, int max, Span<int> selected)
    {
        int count = 0;
        for (int i = 0; i < candidates.Length && count < max; i++)
        {
            int c = candidates[i];
            if (c == self) continue;
            bool keep = true;
            for (int j = 0; j < count && keep; j++) keep = Storage.Distance(c, selected[j]) >= dists[i];
            if (keep) selected[count++] = c;
        }
        return count;
    }

    /// <summary>
    /// Before a slot's vector changes: each of its current neighbours re-selects its own links from its
    /// neighbours plus the slot's neighbours (hnswlib's updatePoint), so links that were justified by the old
    /// vector do not linger. The slot drops out of their lists; <see cref="Link"/> then connects it by its new vector.
    /// </summary>
    private void RepairOldNeighbours(int slot)
    {
        int level = LevelOf(slot);
        for (int l = 0; l <= level; l++)
        {
            int max = l == 0 ? _m0 : _m;
            int* own = LinkList(slot, l);
            int ownCount = CountOf(own, max);
            var neighbours = new int[ownCount];
            for (int i = 0; i < ownCount; i++) neighbours[i] = own[1 + i];
            foreach (int n in neighbours)
            {
                var candidates = new HashSet<int>(neighbours);
                lock (LinkLock(n))
                {
                    int* list = LinkList(n, l);
                    int count = CountOf(list, max);
                    for (int i = 0; i < count; i++) candidates.Add(list[1 + i]);
                    candidates.Remove(n);
                    var slots = candidates.Where(c => c != slot).ToArray();
                    var dists = new float[slots.Length];
                    for (int i = 0; i < slots.Length; i++) dists[i] = Storage.Distance(n, slots[i]);
                    dists.AsSpan().Sort(slots.AsSpan());
                    var kept = new int[max];
                    ReplaceList(list, l, kept.AsSpan(0, SelectNeighbours(n, slots, dists, max, kept)), relinked: slot);
                }
            }
        }
    }

    // ---------------------------------------------------------------- search

    /// <summary>Greedy walk at an upper layer: move to a closer neighbour until none is closer.</summary>
    private void Greedy(in QueryRef q, ref int current, ref float currentDist, int level)
    {
        bool changed = true;
        while (changed)
        {
            changed = false;
            int* list = LinkList(current, level);
            int count = CountOf(list, _m);
            for (int i = 0; i < count; i++)
            {
                int n = list[1 + i];
                float d = Storage.Distance(q, n);
                if (d < currentDist) { currentDist = d; current = n; changed = true; }
            }
        }
    }

    /// <summary>
    /// Best-first search at one layer (Algorithm 2) with a frontier min-heap and a bounded result heap of size ef.
    /// Traversal goes through every node; only live nodes passing the filter enter the results (and, while
    /// building, tombstones are not taken as neighbours). Writes the results ascending into scratch.Slots/Dists.
    /// </summary>
    private int SearchLayer(in QueryRef q, int entry, float entryDist, int ef, int level, SearchScratch scratch, VectorFilter? filter, bool skipRemoved)
    {
        scratch.NewVisit(Storage.SlotCount);
        var candidates = scratch.Candidates;
        var results = scratch.Results;
        results.Reset(ef);
        // Without filter or tombstones every reachable node is a result (Emit still re-validates each one), so the
        // state word, on another cache line than the vector, is not read per candidate.
        bool gated = filter is not null || (skipRemoved && Storage.HasRemoved);
        scratch.Visit(entry);
        candidates.Push(entryDist, entry);
        if (!gated || Storage.Accepts(entry, filter)) results.Offer(entryDist, entry);
        int max = level == 0 ? _m0 : _m;
        int* fresh = stackalloc int[max];
        while (candidates.Count > 0)
        {
            if (results.IsFull && candidates.MinDistance > results.Worst) break;
            int c = candidates.Pop();
            int* list = LinkList(c, level);
            int count = CountOf(list, max);
            // The search waits on memory, not arithmetic: each vector is a few dozen cache lines at a random
            // address. So first collect the unvisited neighbours, asking for each one's first line, then score
            // them in order while the whole vectors of the next few are on their way: many misses in flight
            // instead of one or two (40-50 % more queries per second on 100k x 384 than prefetching one line ahead).
            int freshCount = 0;
            for (int i = 0; i < count; i++)
            {
                int n = list[1 + i];
                if (!scratch.Visit(n)) continue;
                fresh[freshCount++] = n;
                Storage.PrefetchFirstLine(n);
            }
            // The next node to expand is probably the current best candidate: ask for its link list now.
            if (candidates.Count > 0) VectorStorage.PrefetchLine((byte*)LinkList(candidates.PeekSlot, level));
            for (int i = 0; i < Math.Min(freshCount, VectorStorage.PrefetchAhead); i++) Storage.PrefetchVector(fresh[i]);
            for (int i = 0; i < freshCount; i++)
            {
                if (i + VectorStorage.PrefetchAhead < freshCount) Storage.PrefetchVector(fresh[i + VectorStorage.PrefetchAhead]);
                int n = fresh[i];
                float d = Storage.Distance(q, n);
                if (results.IsFull && d >= results.Worst) continue;
                candidates.Push(d, n);
                if (!gated || Storage.Accepts(n, filter)) results.Offer(d, n);
            }
        }
        if (scratch.Slots.Length < results.Count) { scratch.Slots = new int[results.Count]; scratch.Dists = new float[results.Count]; }
        return results.DrainAscending(scratch.Slots, scratch.Dists);
    }

    private protected override List<VectorHit> SearchPrepared(SearchScratch scratch, in QueryRef q, int k, VectorFilter? filter, bool parallel, int efSearch)
    {
        bool rescore = Storage.Quantization == VectorQuantization.Int8 && Storage.Full is not null;
        int slots = Storage.SlotCount, live = Math.Max(1, Storage.LiveCount);
        // Tombstones and filtered-out nodes take places in the frontier but not in the results, so ef grows
        // with the fraction that can be returned.
        double accepted = (double)live / slots;
        if (filter is not null) accepted *= Storage.EstimateSelectivity(filter, SelectivitySamples);
        int ef = Math.Max(efSearch > 0 ? efSearch : EfSearch, k);
        double grown = ef / Math.Max(accepted, 1e-9);
        // When the graph search would have to collect about as many results as there are matches, scan them exactly.
        if (filter is not null && grown >= accepted * slots) return Storage.ExactSearch(q, k, filter, rescore, scratch, threads: 1);
        ef = (int)Math.Min(grown, slots);

        long entry = Volatile.Read(ref _entry);
        if (entry < 0) return [];
        int ep = (int)entry;
        float epDist = Storage.Distance(q, ep);
        for (int l = (int)(entry >> 32); l > 0; l--) Greedy(q, ref ep, ref epDist, l);
        int found = SearchLayer(q, ep, epDist, ef, 0, scratch, filter, skipRemoved: true);
        return Storage.Emit(q, scratch.Slots.AsSpan(0, found), k, filter, rescore);
    }

    /// <summary>Live slots that a walk over layer-0 links from the entry point never reaches: a search can never return them.
    /// Not thread-safe against concurrent writes; for tests and diagnostics.</summary>
    internal int UnreachableCount()
    {
        long entry = Volatile.Read(ref _entry);
        if (entry < 0) return 0;
        int slots = Storage.SlotCount;
        var seen = new bool[slots];
        var stack = new Stack<int>();
        stack.Push((int)entry);
        seen[(int)entry] = true;
        while (stack.Count > 0)
        {
            int* list = LinkList(stack.Pop(), 0);
            int count = CountOf(list, _m0);
            for (int i = 0; i < count; i++)
                if (!seen[list[1 + i]]) { seen[list[1 + i]] = true; stack.Push(list[1 + i]); }
        }
        int unreachable = 0;
        for (int slot = 0; slot < slots; slot++) if (!seen[slot] && !Storage.IsRemoved(slot)) unreachable++;
        return unreachable;
    }

    /// <summary>Slots whose in-link count differs from the number of layer-0 lists holding them (0 when the bookkeeping is
    /// right). Not thread-safe against concurrent writes; for tests.</summary>
    internal int InLinkCountErrors()
    {
        int slots = Storage.SlotCount;
        var counted = new int[slots];
        for (int slot = 0; slot < slots; slot++)
        {
            int* list = LinkList(slot, 0);
            for (int i = 0, count = CountOf(list, _m0); i < count; i++) counted[list[1 + i]]++;
        }
        int errors = 0;
        for (int slot = 0; slot < slots; slot++) if (counted[slot] != InLinks(slot)) errors++;
        return errors;
    }

    // ---------------------------------------------------------------- persistence

    /// <summary>
    /// Memory-maps a saved index: vectors and links are read in place from the page cache, not parsed into the
    /// heap (only ids and metadata are indexed on open). The mapping is copy-on-write, so the index stays fully
    /// writable and a write copies just the pages it touches; the file itself never changes. The checksum over the
    /// whole file and the graph invariants are verified first.
    /// </summary>
    public static new HnswIndex Open(string path) => Read(path, copy: false);

    /// <summary>Reads a saved index fully into memory (same checks as <see cref="Open"/>).</summary>
    public static new HnswIndex Load(string path) => Read(path, copy: true);

    private static HnswIndex Read(string path, bool copy)
    {
        var (h, map, sections) = IndexFile.Open(path, IndexFile.Kind.Hnsw);
        HnswIndex? index = null;
        try
        {
            if (h.M is < HnswOptions.MinM or > HnswOptions.MaxM || h.EfConstruction < 1 || h.EfSearch < 1)
                throw IndexFile.Corrupt(path, $"parameters M={h.M}, efConstruction={h.EfConstruction}, efSearch={h.EfSearch} out of range");
            var options = new HnswOptions
            {
                M = h.M, EfConstruction = h.EfConstruction, EfSearch = h.EfSearch, Seed = h.Seed,
                Quantization = h.Quantization, KeepFullPrecision = h.HasFullPrecision,
            };
            var storage = RestoreStorage(path, h, map, sections, 4 * (1 + 2 * h.M), copy);
            index = new HnswIndex(storage, options);
            if (h.UpperBlockCount < 0) throw IndexFile.Corrupt(path, $"upper block count {h.UpperBlockCount}");
            IndexFile.ExpectLength(path, sections, IndexFile.Section.UpperLinks, (long)h.UpperBlockCount * index._upper.RowBytes);
            index._upper.Adopt(map.Pointer + sections[(int)IndexFile.Section.UpperLinks].Offset, h.UpperBlockCount, copy);
            index._upperCount = h.UpperBlockCount;
            index._entry = h.SlotCount == 0 ? -1 : ((long)h.MaxLevel << 32) | (uint)h.EntryPoint;
            index.CheckInvariants(path, h);
            index.CountInLinks(h.SlotCount);
            if (copy) map.Dispose();
            return index;
        }
        catch
        {
            if (index is not null) index.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>Verifies the class invariants on a freshly read file, so no later traversal can leave the data.</summary>
    private void CheckInvariants(string path, IndexFile.Header h)
    {
        int slots = h.SlotCount;
        if (slots == 0)
        {
            if (h.EntryPoint != -1) throw IndexFile.Corrupt(path, "empty index with an entry point");
            return;
        }
        if ((uint)h.EntryPoint >= (uint)slots || h.MaxLevel is < 0 or > MaxLevel) throw IndexFile.Corrupt(path, $"entry point {h.EntryPoint} at level {h.MaxLevel} is invalid");
        if (LevelOf(h.EntryPoint) != h.MaxLevel) throw IndexFile.Corrupt(path, "the entry point is not on the top level");
        for (int slot = 0; slot < slots; slot++)
        {
            int level = LevelOf(slot);
            if (level > h.MaxLevel || (*(int*)Storage.Tail(slot) >> 24) != 0) throw IndexFile.Corrupt(path, $"slot {slot} has level {level} above the maximum {h.MaxLevel}");
            int start = *Storage.UpperStartPtr(slot);
            if (level > 0 && (start < 0 || (long)start + level > h.UpperBlockCount)) throw IndexFile.Corrupt(path, $"slot {slot} upper links out of range");
            for (int l = 0; l <= level; l++)
            {
                int* list = LinkList(slot, l);
                int max = l == 0 ? _m0 : _m;
                int count = *list & 0xFFFF;
                if (count > max || (l > 0 && (*list >> 16) != 0)) throw IndexFile.Corrupt(path, $"slot {slot} has {count} links at level {l} (max {max})");
                for (int i = 0; i < count; i++)
                {
                    int n = list[1 + i];
                    if ((uint)n >= (uint)slots || n == slot || LevelOf(n) < l) throw IndexFile.Corrupt(path, $"slot {slot} links to invalid slot {n} at level {l}");
                }
            }
        }
    }

    private void CountInLinks(int slots)
    {
        _inLinks.EnsureCapacity(slots);
        for (int slot = 0; slot < slots; slot++) InLinks(slot) = 0;
        for (int slot = 0; slot < slots; slot++)
        {
            int* list = LinkList(slot, 0);
            for (int i = 0, count = CountOf(list, _m0); i < count; i++) InLinks(list[1 + i])++;
        }
    }

    private protected override void WriteFile(string path)
    {
        long entry = Volatile.Read(ref _entry);
        int upper = _upperCount;
        var h = new IndexFile.Header(IndexFile.Kind.Hnsw, Dimension, Metric, Storage.Quantization, Storage.Full is not null,
            Storage.SlotCount, Storage.LiveCount, Storage.Rows.RowBytes, _m, Options.EfConstruction, EfSearch,
            entry < 0 ? -1 : (int)entry, entry < 0 ? 0 : (int)(entry >> 32), upper, Options.Seed);
        IndexFile.Write(path, h, StorageSections(((long)upper * _upper.RowBytes, s => _upper.WriteTo(s, upper))));
    }

    private protected override void DisposeCore()
    {
        _upper.Dispose();
        _inLinks.Dispose();
    }
}
