using System.Buffers.Binary;
using Funnel.Bench.Encoders;
using Funnel.Evaluation;
using Funnel.Inference;
using Funnel.Inference.Packaged;
using Funnel.Retrieval;

namespace Funnel.Bench.Ann;

/// <summary>
/// Real all-MiniLM-L6-v2 vectors: every chunk of BEIR NFCorpus as a collection makes them (default chunking: 254 wordpieces,
/// 32 of overlap) and the 323 test queries. Embedding takes minutes, so the first run caches them in
/// <c>.cache/bench/nfcorpus-minilm.vectors</c> (count, queries, dimension, then rows; written to a temp file and renamed).
/// </summary>
internal static class NfCorpusVectors
{
    private const uint Magic = 0x4E46564D; // "NFVM"

    public static (float[][] Points, float[][] Queries) Load(string shared)
    {
        string cache = Path.Combine(BenchPaths.Locate().Cache, "bench", "nfcorpus-minilm.vectors");
        if (File.Exists(cache)) return Read(cache);

        Console.WriteLine("embedding NFCorpus chunks and test queries with all-MiniLM-L6-v2 (first run only; cached in .cache/bench)");
        using var encoder = SentenceEncoder.FromPretrainedAsync(PackagedModels.DefaultBiEncoder.Id).GetAwaiter().GetResult();
        using var dataset = BeirDataset.Open(Path.Combine(shared, "datasets", "beir-nfcorpus", "nfcorpus.zip"));
        var documents = dataset.ReadCorpusAsync().ToBlockingEnumerable().ToList();
        var embedder = new DocumentEmbedder(encoder, new ChunkingOptions { MaxTokens = encoder.MaxDocumentTokens });
        var points = new List<float[]>();
        for (int start = 0; start < documents.Count; start += 256)
        {
            foreach (var embedded in embedder.Embed(documents.GetRange(start, Math.Min(256, documents.Count - start))))
                points.AddRange(embedded.Vectors);
            Console.Error.Write($"\r  {Math.Min(start + 256, documents.Count):N0} / {documents.Count:N0} documents, {points.Count:N0} chunks");
        }
        Console.Error.WriteLine();
        var qrels = dataset.ReadQrels("test");
        var queryTexts = dataset.ReadQueriesAsync().GetAwaiter().GetResult().Where(q => qrels[q.Id] != null).Select(q => q.Text).ToList();
        float[][] queries = encoder.EncodeQueries(queryTexts);
        Write(cache, [.. points], queries);
        return ([.. points], queries);
    }

    private static void Write(string path, float[][] points, float[][] queries)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
        using (var writer = new BinaryWriter(stream))
        {
            writer.Write(Magic);
            writer.Write(points.Length);
            writer.Write(queries.Length);
            writer.Write(points[0].Length);
            foreach (float[] row in points.Concat(queries))
                foreach (float x in row) writer.Write(x);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    private static (float[][], float[][]) Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 16 || BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Magic)
            throw new InvalidDataException($"{path}: not a vector cache of this bench; delete it to embed again");
        int n = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4)), nq = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8));
        int dim = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(12));
        if (bytes.Length != 16 + (long)(n + nq) * dim * 4)
            throw new InvalidDataException($"{path}: {bytes.Length:N0} bytes, expected {16 + (long)(n + nq) * dim * 4:N0} for {n:N0} + {nq:N0} rows of {dim}; delete it to embed again");
        var rows = new float[n + nq][];
        for (int i = 0; i < rows.Length; i++)
        {
            rows[i] = new float[dim];
            Buffer.BlockCopy(bytes, 16 + i * dim * 4, rows[i], 0, dim * 4);
        }
        return (rows[..n], rows[n..]);
    }
}
