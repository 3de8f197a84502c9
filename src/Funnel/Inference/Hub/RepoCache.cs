using System.Text;
using Funnel.IO;

namespace Funnel.Inference.Hub;

/// <summary>
/// One model's folder in the hub cache, laid out as huggingface_hub does so both share it:
/// <c>models--org--name/blobs/&lt;etag&gt;</c>, <c>snapshots/&lt;commit&gt;/&lt;path&gt;</c> (a relative symlink to the
/// blob), <c>refs/&lt;revision&gt;</c> (the commit), <c>.no_exist/&lt;commit&gt;/&lt;path&gt;</c> (known-absent files),
/// and lock files under <c>&lt;cache&gt;/.locks/models--org--name/</c>.
/// </summary>
internal sealed class RepoCache(string cacheDirectory, HubModelId id)
{
    public string Root { get; } = Path.Combine(cacheDirectory, id.CacheFolderName);

    public string BlobPath(string etag) => Path.Combine(Root, "blobs", etag);

    public string LockPath(string etag) => Path.Combine(cacheDirectory, ".locks", id.CacheFolderName, etag + ".lock");

    public string SnapshotFolder(string commit) => Path.Combine(Root, "snapshots", commit);

    public string AbsentFolder(string commit) => Path.Combine(Root, ".no_exist", commit);

    /// <summary>The commit a revision points to in the cache: the revision itself when it is a commit, else its ref.</summary>
    public string? CommitOf(string revision)
    {
        if (HubModelId.IsCommitHash(revision)) return revision;
        string path = Path.Combine(Root, "refs", revision);
        return File.Exists(path) && File.ReadAllText(path).Trim() is { } commit && HubModelId.IsCommitHash(commit) ? commit : null;
    }

    /// <summary>Points <c>refs/&lt;revision&gt;</c> at a commit; written last, so a ref only ever names a finished snapshot.</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit) return;
        string path = Path.Combine(Root, "refs", revision);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        DurableFile.WriteAtomic(path, stream => stream.Write(Encoding.ASCII.GetBytes(commit)));
    }

    /// <summary>
    /// Makes <c>snapshots/&lt;commit&gt;/&lt;path&gt;</c> a relative symlink to the blob, or a copy where symlinks are not
    /// allowed; replaced atomically, so a reader never sees a half-written entry.
    /// </summary>
    public string Link(string commit, string path, string blobPath)
    {
        string entry = SnapshotEntry(commit, path);
        string folder = Path.GetDirectoryName(entry)!;
        Directory.CreateDirectory(folder);
        string target = Path.GetRelativePath(folder, blobPath);
        if (new FileInfo(entry).LinkTarget == target) return entry;

        string temp = TempPathBeside(entry);
        try
        {
            File.CreateSymbolicLink(temp, target);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            File.Copy(blobPath, temp);
        }
        File.Move(temp, entry, overwrite: true);
        return entry;
    }

    /// <summary>Records that the repository has no such file at this commit, so a later run need not ask again.</summary>
    public void MarkAbsent(string commit, string path)
    {
        string marker = Path.Combine(AbsentFolder(commit), path);
        Directory.CreateDirectory(Path.GetDirectoryName(marker)!);
        if (!File.Exists(marker)) File.WriteAllBytes(marker, []);
    }

    public string SnapshotEntry(string commit, string path) => Path.Combine(SnapshotFolder(commit), path);

    private static string TempPathBeside(string path) => $"{path}.{Guid.NewGuid():N}.tmp";
}
