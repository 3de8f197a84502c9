using System.Buffers.Binary;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Funnel.Inference.Packaged;

/// <summary>Where an embedded manifest resource's bytes lie in an assembly file.</summary>
internal readonly record struct ResourceSpan(long Offset, long Length);

/// <summary>
/// Finds embedded manifest resources in a .NET assembly file by reading its metadata, without loading the assembly
/// (so no code of it runs, and nothing it depends on is needed). ECMA-335 §II.24.2.4 and §II.22.24: the CLI header's
/// Resources directory holds the resources one after another, each a 4-byte little-endian length and then the bytes;
/// a ManifestResource row gives a resource's offset in that directory.
/// </summary>
internal static class ManifestResources
{
    public static ResourceSpan Locate(string assemblyPath, string resourceName)
    {
        using var file = new FileStream(assemblyPath, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            using var pe = new PEReader(file, PEStreamOptions.LeaveOpen);
            if (!pe.HasMetadata || pe.PEHeaders.CorHeader is not { } cor)
                throw new ModelFormatException($"{assemblyPath}: not a .NET assembly (no CLI header)");
            MetadataReader metadata = pe.GetMetadataReader();
            var names = new List<string>();
            foreach (ManifestResourceHandle handle in metadata.ManifestResources)
            {
                ManifestResource resource = metadata.GetManifestResource(handle);
                string name = metadata.GetString(resource.Name);
                names.Add(name);
                if (name != resourceName) continue;
                if (!resource.Implementation.IsNil)
                    throw new ModelFormatException($"{assemblyPath}: resource '{resourceName}' lives in another file, not embedded in this assembly");
                return Read(file, pe, cor.ResourcesDirectory, resource.Offset, assemblyPath, resourceName);
            }
            throw new ModelFormatException($"{assemblyPath}: no manifest resource '{resourceName}' (it has: {(names.Count == 0 ? "none" : string.Join(", ", names))})");
        }
        catch (BadImageFormatException e)
        {
            throw new ModelFormatException($"{assemblyPath}: not a valid .NET assembly: {e.Message}", e);
        }
    }

    private static ResourceSpan Read(FileStream file, PEReader pe, DirectoryEntry directory, long offset, string assemblyPath, string resourceName)
    {
        if (!pe.PEHeaders.TryGetDirectoryOffset(directory, out int start))
            throw new ModelFormatException($"{assemblyPath}: the CLI header's resources directory lies outside every section");
        Span<byte> prefix = stackalloc byte[4];
        long at = start + offset;
        if (offset < 0 || offset + prefix.Length > directory.Size || RandomAccess.Read(file.SafeFileHandle, prefix, at) != prefix.Length)
            throw new ModelFormatException($"{assemblyPath}: resource '{resourceName}' starts at offset {offset}, past the resources directory ({directory.Size} bytes)");
        long length = BinaryPrimitives.ReadUInt32LittleEndian(prefix);
        if (offset + prefix.Length + length > directory.Size)
            throw new ModelFormatException($"{assemblyPath}: resource '{resourceName}' claims {length} bytes at offset {offset}, past the resources directory ({directory.Size} bytes)");
        return new ResourceSpan(at + prefix.Length, length);
    }
}
