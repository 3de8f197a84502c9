using System.Buffers;
using System.Net;
using System.Security.Cryptography;

namespace Funnel.Inference.Hub;

/// <summary>
/// Fetches one blob into <c>&lt;blob&gt;.incomplete</c>, resuming with <c>Range</c> after a dropped or stalled
/// connection, then checks its size (and SHA-256 for LFS blobs) and renames it into place. Cancellation or a
/// failure leaves the <c>.incomplete</c> file for the next run to resume.
/// </summary>
internal sealed class BlobDownload(HubApi api, HubOptions options)
{
    private const int ChunkBytes = 1 << 17;

    /// <summary>Downloads <paramref name="file"/> of model <paramref name="id"/> to <paramref name="blobPath"/>; <paramref name="onBytes"/> gets the bytes on disk so far.</summary>
    public async Task DownloadAsync(HubModelId id, FileMetadata file, string blobPath, Action<long> onBytes, CancellationToken ct)
    {
        string incomplete = blobPath + ".incomplete";
        Directory.CreateDirectory(Path.GetDirectoryName(blobPath)!);
        new FileStream(incomplete, FileMode.OpenOrCreate, FileAccess.Write).Dispose(); // an empty file needs no request
        await FetchWithResumeAsync(id, file, incomplete, onBytes, ct);
        await VerifyAsync(file, incomplete, ct);
        File.Move(incomplete, blobPath, overwrite: true);
    }

    private async Task FetchWithResumeAsync(HubModelId id, FileMetadata file, string incomplete, Action<long> onBytes, CancellationToken ct)
    {
        // Failures count only while no byte arrives, so a long file over a flaky link still finishes, while a dead
        // server is given up after MaxAttempts.
        for (int failures = 0; ; )
        {
            long before = LengthOf(incomplete);
            if (before > file.Size) File.Delete(incomplete);
            else if (before == file.Size) return;
            onBytes(Math.Min(before, file.Size));
            try
            {
                long have = await FetchOnceAsync(id, file, incomplete, onBytes, ct);
                if (have == file.Size) return;
                throw new IOException($"the connection closed after {have} of {file.Size} bytes");
            }
            catch (Exception e) when (HubApi.IsTransient(e, ct))
            {
                failures = LengthOf(incomplete) > before ? 1 : failures + 1;
                if (failures >= options.MaxAttempts) throw api.GaveUp(file.Location, failures, e);
                await Task.Delay(api.RetryDelay(failures), ct);
            }
        }
    }

    /// <summary>One GET, ranged from what is already on disk; returns the bytes on disk afterwards.</summary>
    private async Task<long> FetchOnceAsync(HubModelId id, FileMetadata file, string incomplete, Action<long> onBytes, CancellationToken ct)
    {
        long have = LengthOf(incomplete);
        using HttpResponseMessage response = await api.SendAsync(HttpMethod.Get, file.Location, have > 0 ? have : null, followAbsoluteRedirects: true, ct);
        switch (response.StatusCode)
        {
            case HttpStatusCode.PartialContent when response.Content.Headers.ContentRange?.From == have:
                break;
            case HttpStatusCode.PartialContent:
                File.Delete(incomplete);
                throw new IOException($"{file.Location} answered a request for bytes {have}- with {response.Content.Headers.ContentRange}; starting over");
            case HttpStatusCode.OK:
                have = 0; // the server ignored the range: start over
                break;
            case HttpStatusCode.RequestedRangeNotSatisfiable when have == file.Size:
                return have;
            case HttpStatusCode.RequestedRangeNotSatisfiable:
                File.Delete(incomplete);
                throw new IOException($"{file.Location} refused to resume at byte {have}; starting over");
            default:
                throw api.Error(response, id, file.Path);
        }

        await using Stream body = await response.Content.ReadAsStreamAsync(ct);
        await using var output = new FileStream(incomplete, have > 0 ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0, useAsync: true);
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            while (true)
            {
                stall.CancelAfter(options.StallTimeout);
                int read;
                try
                {
                    read = await body.ReadAsync(buffer.AsMemory(0, ChunkBytes), stall.Token);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new TimeoutException($"no data from {file.Location} for {options.StallTimeout.TotalSeconds:0} s");
                }
                if (read == 0) break;
                if (have + read > file.Size)
                    throw new HubException(HubErrorKind.Integrity, $"{file.Path}: {file.Location} sent more than the announced {file.Size} bytes");
                await output.WriteAsync(buffer.AsMemory(0, read), ct);
                have += read;
                onBytes(have);
            }
            output.Flush(flushToDisk: true);
            return have;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task VerifyAsync(FileMetadata file, string incomplete, CancellationToken ct)
    {
        long length = LengthOf(incomplete);
        if (length != file.Size)
            throw new HubException(HubErrorKind.Integrity, $"{file.Path}: downloaded {length} bytes, expected {file.Size}");
        if (!file.EtagIsSha256) return;

        string actual;
        await using (var stream = new FileStream(incomplete, FileMode.Open, FileAccess.Read, FileShare.Read, ChunkBytes, useAsync: true))
            actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct));
        if (actual != file.Etag)
        {
            // A complete file with the wrong bytes cannot be resumed into the right one.
            File.Delete(incomplete);
            throw new HubException(HubErrorKind.Integrity,
                $"{file.Path}: SHA-256 of the download is {actual}, expected {file.Etag} (from {file.Location}); the corrupt file was deleted, run again to retry");
        }
    }

    private static long LengthOf(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;
}
