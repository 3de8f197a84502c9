namespace Funnel.Inference.Hub;

/// <summary>Progress of one file of a model download: <paramref name="BytesDone"/> of <paramref name="TotalBytes"/>.</summary>
/// <param name="RepoId">The model, e.g. <c>sentence-transformers/all-MiniLM-L6-v2</c>.</param>
/// <param name="File">The file's path inside the repository, e.g. <c>1_Pooling/config.json</c>.</param>
/// <param name="BytesDone">Bytes on disk so far, including those from an earlier, resumed attempt.</param>
/// <param name="TotalBytes">The file's size.</param>
public readonly record struct DownloadProgress(string RepoId, string File, long BytesDone, long TotalBytes)
{
    public bool IsComplete => BytesDone == TotalBytes;
}
