using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Funnel.IO;

namespace Funnel.Retrieval.Lexical;

// Persistence. File layout (little-endian; "v" = 7-bit varint as BinaryWriter writes it, strings = v length + UTF-8):
//   magic "FNLBM25\n" (8 bytes) | int32 version = 1
//   float k1 | float b | bool stems | v stopCount | stop words (ordinal order)
//   v docCount | docCount × (string id, v length)                              — live documents, ordinals 0..docCount-1
//   v termCount | termCount × (string term, v postings, postings × (v ordinal delta, v tf)) — terms with live postings
//   uint64 XxHash64 of every byte before it
public sealed partial class Bm25Index
{
    private static ReadOnlySpan<byte> Magic => "FNLBM25\n"u8;
    private const int FormatVersion = 1;

    /// <summary>Writes the index to <paramref name="path"/> atomically: temp file in the same folder → fsync → rename → fsync of the folder.</summary>
    public void Save(string path) => DurableFile.WriteAtomic(path, WriteTo);

    /// <summary>Writes the whole index (live documents only, renumbered densely) to <paramref name="stream"/>.</summary>
    public void WriteTo(Stream stream)
    {
        _lock.EnterReadLock();
        try
        {
            var hashing = new HashingStream(stream);
            using (var writer = new BinaryWriter(hashing, Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Magic);
                writer.Write(FormatVersion);
                writer.Write(Options.K1);
                writer.Write(Options.B);
                writer.Write(Analyzer.Stems);
                writer.Write7BitEncodedInt(Analyzer.StopWords.Count);
                foreach (string word in Analyzer.StopWords.Order(StringComparer.Ordinal)) writer.Write(word);

                var dense = new int[_docIds.Count];
                writer.Write7BitEncodedInt(_ordinals.Count);
                for (int ordinal = 0, next = 0; ordinal < _docIds.Count; ordinal++)
                {
                    if (_docIds[ordinal] is not { } id) continue;
                    dense[ordinal] = next++;
                    writer.Write(id);
                    writer.Write7BitEncodedInt(_docLengths[ordinal]);
                }

                writer.Write7BitEncodedInt(_postings.Count(p => p.LiveCount > 0));
                for (int termId = 0; termId < _terms.Count; termId++)
                {
                    var postings = _postings[termId];
                    if (postings.LiveCount == 0) continue;
                    writer.Write(_terms[termId]);
                    writer.Write7BitEncodedInt(postings.LiveCount);
                    ReadOnlySpan<int> docs = postings.Docs, tfs = postings.Frequencies;
                    int previous = 0;
                    for (int i = 0; i < docs.Length; i++)
                    {
                        if (_docIds[docs[i]] is null) continue;
                        int doc = dense[docs[i]];
                        writer.Write7BitEncodedInt(doc - previous);
                        writer.Write7BitEncodedInt(tfs[i]);
                        previous = doc;
                    }
                }
            }
            hashing.WriteChecksum();
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Loads an index written by <see cref="Save"/>; a damaged or foreign file gives an <see cref="InvalidDataException"/> naming it.</summary>
    public static Bm25Index Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            throw new FileNotFoundException($"BM25 index file '{path}' does not exist", path);
        }
        return Parse(bytes, path);
    }

    /// <summary>Reads an index written by <see cref="WriteTo"/> from the rest of <paramref name="stream"/>.</summary>
    public static Bm25Index ReadFrom(Stream stream, string sourceName)
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return Parse(buffer.ToArray(), sourceName);
    }

    private static Bm25Index Parse(byte[] bytes, string source)
    {
        if (bytes.Length < Magic.Length + 4 + 8 || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new InvalidDataException($"'{source}' is not a Funnel BM25 index (missing the FNLBM25 header)");
        int version = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(Magic.Length));
        if (version != FormatVersion)
            throw new InvalidDataException($"'{source}' is a BM25 index of format version {version}; this build reads version {FormatVersion}");
        int body = bytes.Length - 8;
        if (XxHash64.HashToUInt64(bytes.AsSpan(0, body)) != BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(body)))
            throw new InvalidDataException($"BM25 index '{source}' is corrupt (checksum mismatch); rebuild it");

        try
        {
            using var reader = new BinaryReader(new MemoryStream(bytes, Magic.Length + 4, body - Magic.Length - 4, writable: false), Encoding.UTF8);
            var options = new Bm25Options(reader.ReadSingle(), reader.ReadSingle());
            bool stems = reader.ReadBoolean();
            var stopWords = new string[reader.Read7BitEncodedInt()];
            for (int i = 0; i < stopWords.Length; i++) stopWords[i] = reader.ReadString();
            var index = new Bm25Index(new EnglishAnalyzer(stopWords, stems), options);

            int docCount = reader.Read7BitEncodedInt();
            for (int ordinal = 0; ordinal < docCount; ordinal++)
            {
                string id = reader.ReadString();
                int length = reader.Read7BitEncodedInt();
                index._docIds.Add(id);
                index._docLengths.Add(length);
                index._ordinals.Add(id, ordinal);
                index._totalLength += length;
            }

            var termsPerDoc = new int[docCount];
            int termCount = reader.Read7BitEncodedInt();
            for (int termId = 0; termId < termCount; termId++)
            {
                string term = reader.ReadString();
                var postings = new PostingList();
                int n = reader.Read7BitEncodedInt(), doc = 0;
                for (int i = 0; i < n; i++)
                {
                    doc += reader.Read7BitEncodedInt();
                    postings.Append(doc, reader.Read7BitEncodedInt());
                    termsPerDoc[doc]++;
                }
                index._termIds.Add(term, termId);
                index._terms.Add(term);
                index._postings.Add(postings);
            }
            if (reader.BaseStream.Position != reader.BaseStream.Length) throw new InvalidDataException("trailing bytes after the postings");

            // Rebuild the forward index (term ids per document) that removal needs.
            var forward = new int[docCount][];
            for (int doc = 0; doc < docCount; doc++) forward[doc] = new int[termsPerDoc[doc]];
            Array.Clear(termsPerDoc);
            for (int termId = 0; termId < termCount; termId++)
                foreach (int doc in index._postings[termId].Docs)
                    forward[doc][termsPerDoc[doc]++] = termId;
            index._docTerms.AddRange(forward);
            return index;
        }
        catch (Exception e) when (e is EndOfStreamException or IndexOutOfRangeException or ArgumentException or InvalidDataException or FormatException)
        {
            throw new InvalidDataException($"BM25 index '{source}' is malformed ({e.Message})", e);
        }
    }
}
