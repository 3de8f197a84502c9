namespace Funnel.Inference.Hub;

/// <summary>
/// An exclusive lock on a file, held while the stream is open. <c>FileShare.None</c> is an flock on Unix, the same
/// lock Python's filelock takes, so Funnel and huggingface_hub never write one blob at the same time.
/// </summary>
internal static class FileLock
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);

    public static async Task<FileStream> AcquireAsync(string path, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (File.Exists(path))
            {
                await Task.Delay(Poll, ct);
            }
        }
    }
}
