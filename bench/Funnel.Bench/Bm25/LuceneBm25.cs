using Lucene.Net.Analysis;
using Lucene.Net.Analysis.TokenAttributes;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Search.Similarities;
using Lucene.Net.Store;
using Lucene.Net.Util;
using LuceneEnglishAnalyzer = Lucene.Net.Analysis.En.EnglishAnalyzer;

namespace Funnel.Bench.Bm25;

/// <summary>
/// The anchor: Lucene.Net 4.8's BM25 (k1 0.9, b 0.4) over its EnglishAnalyzer, queried as Anserini queries — the analysed
/// query terms as a bag of words (a term repeated n times is boosted n times) in one disjunction. Lucene stores each
/// document's length in one byte (SmallFloat), which is the lossy norm Funnel's exact lengths do not reproduce.
/// </summary>
internal sealed class LuceneBm25 : IDisposable
{
    private const string IdField = "id", TextField = "contents";
    private static readonly LuceneVersion Version = LuceneVersion.LUCENE_48;
    private readonly Analyzer _analyzer = new LuceneEnglishAnalyzer(Version);
    private readonly RAMDirectory _directory = new();
    private readonly BM25Similarity _similarity = new(0.9f, 0.4f);
    private DirectoryReader? _reader;
    private IndexSearcher? _searcher;
    private string[] _ids = [];

    public void Index(IEnumerable<(string Id, string Text)> documents)
    {
        var config = new IndexWriterConfig(Version, _analyzer) { Similarity = _similarity, OpenMode = OpenMode.CREATE };
        using (var writer = new IndexWriter(_directory, config))
        {
            foreach (var (id, text) in documents)
                writer.AddDocument([new StringField(IdField, id, Field.Store.YES), new TextField(TextField, text, Field.Store.NO)]);
            writer.Commit();
        }
        _reader = DirectoryReader.Open(_directory);
        _searcher = new IndexSearcher(_reader) { Similarity = _similarity };
        // Ids are read once, as an engine's doc-id map would hold them, so that the timed searches fetch no stored fields.
        _ids = new string[_reader.MaxDoc];
        for (int doc = 0; doc < _ids.Length; doc++) _ids[doc] = _reader.Document(doc).Get(IdField);
    }

    public int Count => _reader?.NumDocs ?? 0;

    public IReadOnlyList<(string Id, float Score)> Search(string query, int k)
    {
        var searcher = _searcher ?? throw new InvalidOperationException("Index before searching");
        var terms = new Dictionary<string, int>(StringComparer.Ordinal);
        using (TokenStream stream = _analyzer.GetTokenStream(TextField, new StringReader(query)))
        {
            var term = stream.AddAttribute<ICharTermAttribute>();
            stream.Reset();
            while (stream.IncrementToken()) terms[term.ToString()] = terms.GetValueOrDefault(term.ToString()) + 1;
            stream.End();
        }
        if (terms.Count == 0) return [];
        var boolean = new BooleanQuery();
        foreach (var (text, count) in terms)
            boolean.Add(new TermQuery(new Term(TextField, text)) { Boost = count }, Occur.SHOULD);
        TopDocs top = searcher.Search(boolean, k);
        return top.ScoreDocs.Select(hit => (_ids[hit.Doc], hit.Score)).ToList();
    }

    public void Dispose()
    {
        _reader?.Dispose();
        _directory.Dispose();
        _analyzer.Dispose();
    }
}
