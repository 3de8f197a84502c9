using Funnel.Index;
using Funnel.IO;
using Funnel.Retrieval.Lexical;
using Funnel.Retrieval.Storage;

namespace Funnel.Retrieval;

/// <summary>
/// A collection folder's layout and its writer lock: <c>manifest.json</c>, the generation folders <c>gen-NNNNNN</c> (each a
/// checkpoint's snapshots), the write-ahead logs <c>wal-NNNNNN.log</c> and <c>LOCK</c>; writing a generation, and removing what
/// crashes or superseded checkpoints left. See docs/file-formats.md, "Collection format".
/// </summary>
internal static class CollectionFolder
{
    private const string LockFileName = "LOCK", DocumentsFileName = "documents.bin", VectorsFileName = "vectors.idx", Bm25FileName = "bm25.idx";

    public static string Generation(string folder, long generation) => Path.Combine(folder, $"gen-{generation:D6}");

    public static string Log(string folder, long generation) => Path.Combine(folder, $"wal-{generation:D6}.log");

    public static FileStream AcquireWriterLock(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"collection folder '{folder}' does not exist");
        try
        {
            // FileShare.None is an exclusive advisory lock (flock on Unix), released by the OS if the process dies.
            return new FileStream(Path.Combine(folder, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new CollectionFolderException($"collection '{folder}' is open for writing in another process; wait for it to finish", e);
        }
    }

    public static void WriteSnapshot(string generationFolder, IReadOnlyCollection<StoredDocument> documents, long nextChunkId, IVectorIndex vectors, Bm25Index bm25)
    {
        if (Directory.Exists(generationFolder)) Directory.Delete(generationFolder, recursive: true); // an interrupted earlier attempt
        Directory.CreateDirectory(generationFolder);
        DocumentSnapshot.Write(Path.Combine(generationFolder, DocumentsFileName), documents, nextChunkId);
        vectors.Save(Path.Combine(generationFolder, VectorsFileName));
        bm25.Save(Path.Combine(generationFolder, Bm25FileName));
        DurableFile.SyncDirectory(Path.GetDirectoryName(generationFolder)!);
    }

    /// <summary>Reads what <see cref="WriteSnapshot"/> wrote: the documents, the next chunk id, and the two indexes (the vector
    /// index as <paramref name="settings"/> says, memory-mapped when <paramref name="mapped"/>).</summary>
    public static (List<StoredDocument> Documents, long NextChunkId, IVectorIndex Vectors, Bm25Index Bm25) ReadSnapshot(
        string generationFolder, VectorIndexSettings settings, bool mapped)
    {
        var (documents, nextChunkId) = DocumentSnapshot.Read(Path.Combine(generationFolder, DocumentsFileName));
        IVectorIndex vectors = settings.Open(Path.Combine(generationFolder, VectorsFileName), mapped);
        try
        {
            return (documents, nextChunkId, vectors, Bm25Index.Load(Path.Combine(generationFolder, Bm25FileName)));
        }
        catch
        {
            vectors.Dispose();
            throw;
        }
    }

    /// <summary>A name a collection folder may hold; a folder with only these and no manifest is a create that was interrupted.</summary>
    public static bool IsCollectionFile(string name) =>
        name == LockFileName || name.StartsWith("gen-", StringComparison.Ordinal) || name.StartsWith("wal-", StringComparison.Ordinal) ||
        (name.StartsWith('.') && name.EndsWith(".tmp", StringComparison.Ordinal));

    /// <summary>Deletes generations, logs and temp files other than the committed generation's (left by crashes or superseded).</summary>
    public static void RemoveLeftovers(string folder, long generation)
    {
        string keepGeneration = Path.GetFileName(Generation(folder, generation)), keepLog = Path.GetFileName(Log(folder, generation));
        foreach (string dir in Directory.EnumerateDirectories(folder, "gen-*"))
            if (Path.GetFileName(dir) != keepGeneration) Directory.Delete(dir, recursive: true);
        foreach (string file in Directory.EnumerateFiles(folder, "wal-*.log"))
            if (Path.GetFileName(file) != keepLog) File.Delete(file);
        foreach (string file in Directory.EnumerateFiles(folder, ".*.tmp")) File.Delete(file);
    }
}
