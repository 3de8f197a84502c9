using System.Buffers;
using System.Runtime.InteropServices;

namespace Funnel.Retrieval.Lexical;

/// <summary>BM25 parameters; the defaults are Anserini's (k1 = 0.9, b = 0.4).</summary>
public sealed record Bm25Options(float K1 = 0.9f, float B = 0.4f)
{
    internal void Validate()
    {
        if (!(K1 >= 0) || float.IsInfinity(K1)) throw new ArgumentOutOfRangeException(nameof(K1), K1, "k1 must be a finite number ≥ 0");
        if (!(B is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(B), B, "b must be in [0, 1]");
    }
}

/// <summary>A BM25 search result; a higher score is better.</summary>
public readonly record struct Bm25Hit(string DocId, float Score);

/// <summary>
/// What BM25 scores against: live documents, their total length in terms, and the document frequencies of some terms (a
/// query's). An index scores with its own by default; a shard of a larger collection scores with the collection-wide sums
/// (<see cref="Sum"/>), so that its scores equal those of one index holding every document.
/// </summary>
public sealed record Bm25Statistics(int DocumentCount, long TotalLength, IReadOnlyDictionary<string, int> DocumentFrequencies)
{
    /// <summary>The statistics of the union of disjoint indexes: counts, lengths and frequencies add up.</summary>
    public static Bm25Statistics Sum(IEnumerable<Bm25Statistics> parts)
    {
        int documents = 0;
        long length = 0;
        var frequencies = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (Bm25Statistics part in parts)
        {
            documents += part.DocumentCount;
            length += part.TotalLength;
            foreach (var (term, df) in part.DocumentFrequencies) CollectionsMarshal.GetValueRefOrAddDefault(frequencies, term, out _) += df;
        }
        return new Bm25Statistics(documents, length, frequencies);
    }
}

/// <summary>
/// An in-memory inverted index scored with BM25 as Lucene's <c>BM25Similarity</c> defines it:
/// score(d, q) = Σ_t qtf(t) · idf(t) · tf / (tf + k1 · (1 − b + b · |d| / avgdl)), with
/// idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5)), N and df over live documents and |d| the number of analyzed
/// terms (exact, where Lucene rounds document lengths to one byte). Lucene 8+ drops the constant (k1 + 1)
/// factor, which does not change the ranking. A query term repeated n times counts n times (as Anserini's
/// bag-of-words queries do).
/// <para>
/// Documents are added, replaced and removed incrementally: document frequencies and lengths are exact at
/// all times; postings of removed documents are skipped and purged once they make up half of the index.
/// Ties in score are broken by document id (ordinal string order, ascending), so results never depend on
/// insertion order. Searches may run concurrently with each other and with updates.
/// </para>
/// </summary>
public sealed partial class Bm25Index
{
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Dictionary<string, int> _termIds = new(StringComparer.Ordinal);
    private readonly List<string> _terms = [];
    private readonly List<PostingList> _postings = [];

    // Per document ordinal; a removed document keeps its ordinal (id null) until compaction.
    private readonly List<string?> _docIds = [];
    private readonly List<int> _docLengths = [];
    private readonly List<int[]> _docTerms = [];
    private readonly Dictionary<string, int> _ordinals = new(StringComparer.Ordinal);
    private long _totalLength;

    // Score accumulators. A private pool, because its arrays start zeroed and only come back zeroed (every search resets
    // the entries it touched), so a search costs O(postings) rather than O(documents); the shared pool may hand out
    // uninitialized arrays.
    private readonly ArrayPool<float> _accumulators = ArrayPool<float>.Create(maxArrayLength: 1 << 30, maxArraysPerBucket: Environment.ProcessorCount);

    public Bm25Index(EnglishAnalyzer? analyzer = null, Bm25Options? options = null)
    {
        Options = options ?? new Bm25Options();
        Options.Validate();
        Analyzer = analyzer ?? new EnglishAnalyzer();
    }

    public EnglishAnalyzer Analyzer { get; }

    public Bm25Options Options { get; }

    /// <summary>Live documents.</summary>
    public int Count => Read(() => _ordinals.Count);

    /// <summary>Distinct terms that occur in at least one live document.</summary>
    public int TermCount => Read(() => _postings.Count(p => p.LiveCount > 0));

    /// <summary>Mean number of analyzed terms per live document (0 when empty).</summary>
    public double AverageDocumentLength => Read(() => _ordinals.Count == 0 ? 0 : (double)_totalLength / _ordinals.Count);

    public bool Contains(string docId) => Read(() => _ordinals.ContainsKey(docId));

    /// <summary>Indexes <paramref name="text"/> as document <paramref name="docId"/>, replacing any document with that id.</summary>
    public void Add(string docId, string text)
    {
        ArgumentNullException.ThrowIfNull(docId);
        Add(docId, Analyze(text));
    }

    /// <summary>A text analyzed for <see cref="Add(string, AnalyzedText)"/>: its terms' frequencies and its length in terms.</summary>
    internal sealed record AnalyzedText(Dictionary<string, int> Frequencies, int Length);

    /// <summary>The expensive part of adding a document, which needs no lock: a caller (a collection) analyzes first and then
    /// adds while it publishes.</summary>
    internal AnalyzedText Analyze(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var terms = Analyzer.Analyze(text);
        var frequencies = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string term in terms)
            CollectionsMarshal.GetValueRefOrAddDefault(frequencies, term, out _)++;
        return new AnalyzedText(frequencies, terms.Count);
    }

    /// <summary>Adds (or replaces) a document analyzed by <see cref="Analyze"/>.</summary>
    internal void Add(string docId, AnalyzedText analyzed)
    {
        ArgumentNullException.ThrowIfNull(docId);
        var (frequencies, length) = analyzed;
        _lock.EnterWriteLock();
        try
        {
            if (_ordinals.TryGetValue(docId, out int old)) RemoveOrdinal(docId, old);
            int ordinal = _docIds.Count;
            var termIds = new int[frequencies.Count];
            int n = 0;
            foreach (var (term, tf) in frequencies)
            {
                if (!_termIds.TryGetValue(term, out int termId))
                {
                    termId = _terms.Count;
                    _termIds.Add(term, termId);
                    _terms.Add(term);
                    _postings.Add(new PostingList());
                }
                _postings[termId].Append(ordinal, tf);
                termIds[n++] = termId;
            }
            _docIds.Add(docId);
            _docLengths.Add(length);
            _docTerms.Add(termIds);
            _ordinals.Add(docId, ordinal);
            _totalLength += length;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Removes document <paramref name="docId"/>; false when it is not in the index.</summary>
    public bool Remove(string docId)
    {
        ArgumentNullException.ThrowIfNull(docId);
        _lock.EnterWriteLock();
        try
        {
            if (!_ordinals.TryGetValue(docId, out int ordinal)) return false;
            RemoveOrdinal(docId, ordinal);
            if (_docIds.Count >= 1024 && _ordinals.Count < _docIds.Count / 2) Compact();
            return true;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private void RemoveOrdinal(string docId, int ordinal)
    {
        foreach (int termId in _docTerms[ordinal]) _postings[termId].LiveCount--;
        _docTerms[ordinal] = [];
        _totalLength -= _docLengths[ordinal];
        _docIds[ordinal] = null;
        _ordinals.Remove(docId);
    }

    /// <summary>Renumbers live documents densely (keeping their order) and drops postings of removed ones.</summary>
    private void Compact()
    {
        var remap = new int[_docIds.Count];
        int next = 0;
        for (int old = 0; old < _docIds.Count; old++)
        {
            if (_docIds[old] is { } id)
            {
                remap[old] = next;
                _docIds[next] = id;
                _docLengths[next] = _docLengths[old];
                _docTerms[next] = _docTerms[old];
                _ordinals[id] = next;
                next++;
            }
            else remap[old] = -1;
        }
        int removed = _docIds.Count - next;
        _docIds.RemoveRange(next, removed);
        _docLengths.RemoveRange(next, removed);
        _docTerms.RemoveRange(next, removed);
        foreach (var postings in _postings) postings.Remap(remap);
    }

    /// <summary>
    /// The <paramref name="k"/> best live documents for <paramref name="query"/> (analyzed like the documents),
    /// best first; only documents that contain at least one query term and that <paramref name="filter"/> accepts.
    /// </summary>
    public IReadOnlyList<Bm25Hit> Search(string query, int k, Func<string, bool>? filter = null) => Search(query, k, filter, null);

    /// <summary>
    /// As <see cref="Search(string, int, Func{string, bool}?)"/>, scoring with <paramref name="statistics"/> (collection-wide
    /// document count, length and the query terms' document frequencies, e.g. summed over shards) in place of this index's own;
    /// null scores with this index's.
    /// </summary>
    public IReadOnlyList<Bm25Hit> Search(string query, int k, Func<string, bool>? filter, Bm25Statistics? statistics)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        var queryTerms = Analyzer.Analyze(query);
        _lock.EnterReadLock();
        try
        {
            return SearchLocked(queryTerms, k, filter, statistics);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>This index's statistics for the terms of <paramref name="query"/> (analyzed like the documents): what a
    /// shard contributes to a collection-wide <see cref="Bm25Statistics.Sum"/>.</summary>
    public Bm25Statistics Statistics(string query)
    {
        ArgumentNullException.ThrowIfNull(query);
        var queryTerms = Analyzer.Analyze(query);
        _lock.EnterReadLock();
        try
        {
            var frequencies = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (string term in queryTerms)
                frequencies[term] = _termIds.TryGetValue(term, out int termId) ? _postings[termId].LiveCount : 0;
            return new Bm25Statistics(_ordinals.Count, _totalLength, frequencies);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private Bm25Hit[] SearchLocked(List<string> queryTerms, int k, Func<string, bool>? filter, Bm25Statistics? statistics)
    {
        if (_ordinals.Count == 0 || queryTerms.Count == 0) return [];
        int live = statistics?.DocumentCount ?? _ordinals.Count;
        long totalLength = statistics?.TotalLength ?? _totalLength;

        var weights = new Dictionary<int, float>();
        foreach (string term in queryTerms)
        {
            if (!_termIds.TryGetValue(term, out int termId) || _postings[termId].LiveCount == 0) continue;
            int df = statistics is not null && statistics.DocumentFrequencies.TryGetValue(term, out int global) ? global : _postings[termId].LiveCount;
            CollectionsMarshal.GetValueRefOrAddDefault(weights, termId, out _) += Idf(df, live);
        }
        if (weights.Count == 0) return [];

        float k1 = Options.K1, b = Options.B;
        float lengthScale = (float)(k1 * b / ((double)totalLength / live));
        float lengthBase = k1 * (1 - b);
        int ordinals = _docIds.Count;
        float[] scores = _accumulators.Rent(ordinals);
        int[] touched = ArrayPool<int>.Shared.Rent(ordinals);
        int touchedCount = 0;
        try
        {
            // Term at a time into dense accumulators: every term's postings are one sequential scan.
            foreach (var (termId, weight) in weights)
            {
                var postings = _postings[termId];
                ReadOnlySpan<int> docs = postings.Docs, tfs = postings.Frequencies;
                for (int i = 0; i < docs.Length; i++)
                {
                    int doc = docs[i];
                    if (_docIds[doc] is null) continue;
                    float tf = tfs[i];
                    float add = weight * tf / (tf + lengthBase + lengthScale * _docLengths[doc]);
                    if (scores[doc] == 0) touched[touchedCount++] = doc; // BM25 terms are > 0, so 0 means unseen
                    scores[doc] += add;
                }
            }
            return SelectTop(scores, touched.AsSpan(0, touchedCount), k, filter);
        }
        finally
        {
            foreach (int doc in touched.AsSpan(0, touchedCount)) scores[doc] = 0;
            _accumulators.Return(scores);
            ArrayPool<int>.Shared.Return(touched);
        }
    }

    private Bm25Hit[] SelectTop(float[] scores, ReadOnlySpan<int> candidates, int k, Func<string, bool>? filter)
    {
        // Min-heap of the best k so far; its root is the worst kept hit.
        var heap = new PriorityQueue<Bm25Hit, Bm25Hit>(Math.Min(k, candidates.Length) + 1, WorstFirst.Instance);
        foreach (int doc in candidates)
        {
            var hit = new Bm25Hit(_docIds[doc]!, scores[doc]);
            if (heap.Count == k && WorstFirst.Instance.Compare(hit, heap.Peek()) <= 0) continue;
            if (filter != null && !filter(hit.DocId)) continue;
            if (heap.Count == k) heap.DequeueEnqueue(hit, hit);
            else heap.Enqueue(hit, hit);
        }
        var result = new Bm25Hit[heap.Count];
        for (int i = result.Length - 1; i >= 0; i--) result[i] = heap.Dequeue();
        return result;
    }

    /// <summary>Lucene's BM25 idf: ln(1 + (N − df + 0.5) / (df + 0.5)), always &gt; 0.</summary>
    public static float Idf(int documentFrequency, int documentCount) =>
        (float)Math.Log(1 + (documentCount - documentFrequency + 0.5) / (documentFrequency + 0.5));

    /// <summary>Orders hits from worst to best: lower score first, then (among equal scores) the larger id first.</summary>
    private sealed class WorstFirst : IComparer<Bm25Hit>
    {
        public static readonly WorstFirst Instance = new();

        public int Compare(Bm25Hit x, Bm25Hit y)
        {
            int c = x.Score.CompareTo(y.Score);
            return c != 0 ? c : string.CompareOrdinal(y.DocId, x.DocId);
        }
    }

    private T Read<T>(Func<T> read)
    {
        _lock.EnterReadLock();
        try
        {
            return read();
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>One term's postings: ascending document ordinals with term frequencies, plus its live document frequency.</summary>
    private sealed class PostingList
    {
        private int[] _docs = new int[2];
        private int[] _tfs = new int[2];
        private int _count;

        public int LiveCount;

        public ReadOnlySpan<int> Docs => _docs.AsSpan(0, _count);

        public ReadOnlySpan<int> Frequencies => _tfs.AsSpan(0, _count);

        public void Append(int doc, int tf)
        {
            if (_count == _docs.Length)
            {
                Array.Resize(ref _docs, _count * 2);
                Array.Resize(ref _tfs, _count * 2);
            }
            _docs[_count] = doc;
            _tfs[_count] = tf;
            _count++;
            LiveCount++;
        }

        public void Remap(int[] remap)
        {
            int n = 0;
            for (int i = 0; i < _count; i++)
            {
                int doc = remap[_docs[i]];
                if (doc < 0) continue;
                _docs[n] = doc;
                _tfs[n] = _tfs[i];
                n++;
            }
            _count = n;
        }
    }
}
