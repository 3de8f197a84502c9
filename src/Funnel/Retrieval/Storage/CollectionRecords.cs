namespace Funnel.Retrieval.Storage;

/// <summary>A document as the collection keeps it: its chunks and the vector-index id of each.</summary>
internal sealed record StoredDocument(Document Document, ChunkSpan[] Chunks, long[] ChunkIds);

/// <summary>One change of a write-ahead-log batch.</summary>
internal abstract record CollectionOperation;

/// <summary>Insert or replace a document; carries the chunk vectors so that replaying the log never re-runs the encoder.</summary>
internal sealed record UpsertOperation(StoredDocument Stored, float[][] Vectors) : CollectionOperation
{
    /// <summary>Why a vector cannot go into a collection of vectors of <paramref name="dimension"/> (wrong size, NaN or ±∞), or null.</summary>
    public static string? VectorProblem(float[] v, int dimension)
    {
        if (v.Length != dimension) return $"a vector has {v.Length} dimensions, the collection {dimension}";
        int bad = Array.FindIndex(v, x => !float.IsFinite(x));
        return bad < 0 ? null : $"a vector holds {v[bad]} at dimension {bad}; vectors must be finite";
    }
}

internal sealed record DeleteOperation(string DocumentId) : CollectionOperation;

/// <summary>Binary encoding of documents and batches (little-endian, UTF-8 strings with 7-bit-encoded length prefixes).</summary>
internal static class RecordCodec
{
    private const byte UpsertTag = 1, DeleteTag = 2;

    public static byte[] EncodeBatch(IReadOnlyList<CollectionOperation> operations)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write7BitEncodedInt(operations.Count);
            foreach (CollectionOperation operation in operations)
                switch (operation)
                {
                    case UpsertOperation upsert:
                        writer.Write(UpsertTag);
                        WriteStored(writer, upsert.Stored);
                        int dimension = upsert.Vectors.Length == 0 ? 0 : upsert.Vectors[0].Length;
                        writer.Write7BitEncodedInt(dimension);
                        foreach (float[] vector in upsert.Vectors)
                        {
                            if (vector.Length != dimension) throw new ArgumentException("chunk vectors of one document differ in length");
                            writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(vector.AsSpan()));
                        }
                        break;
                    case DeleteOperation delete:
                        writer.Write(DeleteTag);
                        writer.Write(delete.DocumentId);
                        break;
                    default:
                        throw new ArgumentException($"unknown operation {operation.GetType().Name}");
                }
        }
        return buffer.ToArray();
    }

    public static List<CollectionOperation> DecodeBatch(ReadOnlyMemory<byte> payload)
    {
        if (!System.Runtime.InteropServices.MemoryMarshal.TryGetArray(payload, out ArraySegment<byte> segment))
            segment = payload.ToArray();
        using var reader = new BinaryReader(new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false), System.Text.Encoding.UTF8);
        int count = reader.Read7BitEncodedInt();
        var operations = new List<CollectionOperation>(count);
        for (int i = 0; i < count; i++)
        {
            byte tag = reader.ReadByte();
            switch (tag)
            {
                case UpsertTag:
                    StoredDocument stored = ReadStored(reader);
                    int dimension = reader.Read7BitEncodedInt();
                    var vectors = new float[stored.Chunks.Length][];
                    for (int c = 0; c < vectors.Length; c++)
                    {
                        vectors[c] = new float[dimension];
                        reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(vectors[c].AsSpan()));
                    }
                    operations.Add(new UpsertOperation(stored, vectors));
                    break;
                case DeleteTag:
                    operations.Add(new DeleteOperation(reader.ReadString()));
                    break;
                default:
                    throw new InvalidDataException($"unknown operation tag {tag} in a log record");
            }
        }
        return operations;
    }

    public static void WriteStored(BinaryWriter writer, StoredDocument stored)
    {
        Document d = stored.Document;
        writer.Write(d.Id);
        writer.Write(d.Title);
        writer.Write(d.Text);
        writer.Write7BitEncodedInt(d.Metadata.Count);
        foreach (var (key, value) in d.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            writer.Write(key);
            writer.Write(value);
        }
        writer.Write7BitEncodedInt(stored.Chunks.Length);
        for (int c = 0; c < stored.Chunks.Length; c++)
        {
            writer.Write7BitEncodedInt64(stored.ChunkIds[c]);
            writer.Write7BitEncodedInt(stored.Chunks[c].Start);
            writer.Write7BitEncodedInt(stored.Chunks[c].End);
        }
    }

    public static StoredDocument ReadStored(BinaryReader reader)
    {
        string id = reader.ReadString(), title = reader.ReadString(), text = reader.ReadString();
        int metadataCount = reader.Read7BitEncodedInt();
        var metadata = new Dictionary<string, string>(metadataCount, StringComparer.Ordinal);
        for (int m = 0; m < metadataCount; m++) metadata[reader.ReadString()] = reader.ReadString();
        int chunkCount = reader.Read7BitEncodedInt();
        var chunks = new ChunkSpan[chunkCount];
        var ids = new long[chunkCount];
        for (int c = 0; c < chunkCount; c++)
        {
            ids[c] = reader.Read7BitEncodedInt64();
            chunks[c] = new ChunkSpan(reader.Read7BitEncodedInt(), reader.Read7BitEncodedInt());
        }
        return new StoredDocument(new Document(id, title, text, metadata), chunks, ids);
    }
}
