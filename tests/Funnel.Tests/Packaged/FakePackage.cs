using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using System.Security.Cryptography;
using System.Text;
using Funnel.Inference;
using Funnel.Inference.Packaged;

namespace Funnel.Tests.Packaged;

/// <summary>
/// A small NuGet package laid out as the global packages folder holds one (<c>{id}/{version}/lib/netstandard2.1/{id}.dll</c>),
/// whose assembly (metadata only, written with System.Reflection.Metadata's PE builder) embeds a stand-in "ONNX" file and the
/// real bert-base-uncased vocabulary with CRLF line ends, as the real packages do. Its catalog entry is <see cref="Model"/>.
/// </summary>
internal sealed class FakePackage
{
    public const string PackageId = "Test.TinyEncoder";
    public const string Version = "1.2.3";

    public FakePackage(string packagesRoot, byte[]? onnx = null, bool withVocab = true)
    {
        Onnx = onnx ?? RandomNumberGenerator.GetBytes(300_000);
        Vocab = File.ReadAllBytes(Path.Combine(TestPaths.SharedModel("all-MiniLM-L6-v2"), "vocab.txt"));
        PackagesRoot = packagesRoot;
        Model = new PackagedModel
        {
            Id = "test-org/tiny-encoder",
            PackageId = PackageId,
            PackageVersion = Version,
            ModelCard = "https://example.invalid/test-org/tiny-encoder",
            Pooling = PoolingMode.Cls,
            MaxSeqLength = 128,
            Prompts = new Dictionary<string, string> { ["query"] = "query: " },
            OnnxSha256 = Convert.ToHexStringLower(SHA256.HashData(Onnx)),
            OnnxLength = Onnx.Length,
        };
        string lib = Path.Combine(packagesRoot, PackageId.ToLowerInvariant(), Version, "lib", "netstandard2.1");
        Directory.CreateDirectory(lib);
        AssemblyPath = Path.Combine(lib, PackageId + ".dll");
        var resources = new List<(string, byte[])> { ("Unrelated.Resource.txt", "hello"u8.ToArray()), (Model.OnnxResource, Onnx) };
        if (withVocab) resources.Add((Model.VocabResource, Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(Vocab).Replace("\n", "\r\n"))));
        WriteAssembly(AssemblyPath, PackageId, resources);
    }

    public string PackagesRoot { get; }
    public string AssemblyPath { get; }
    public byte[] Onnx { get; }

    /// <summary>bert-base-uncased's vocab.txt with LF line ends: what the materialized folder must hold.</summary>
    public byte[] Vocab { get; }

    public PackagedModel Model { get; }

    /// <summary>A library assembly with no code and these embedded manifest resources, in this order.</summary>
    public static void WriteAssembly(string path, string name, IReadOnlyList<(string Name, byte[] Content)> resources)
    {
        var metadata = new MetadataBuilder();
        metadata.AddModule(0, metadata.GetOrAddString(name + ".dll"), metadata.GetOrAddGuid(Guid.NewGuid()), default, default);
        metadata.AddAssembly(metadata.GetOrAddString(name), new Version(1, 0, 0, 0), default, default, default, AssemblyHashAlgorithm.Sha1);
        metadata.AddTypeDefinition(default, default, metadata.GetOrAddString("<Module>"), default,
            MetadataTokens.FieldDefinitionHandle(1), MetadataTokens.MethodDefinitionHandle(1));
        var blobs = new BlobBuilder();
        foreach (var (resource, content) in resources)
        {
            metadata.AddManifestResource(ManifestResourceAttributes.Public, metadata.GetOrAddString(resource), default, (uint)blobs.Count);
            blobs.WriteInt32(content.Length);
            blobs.WriteBytes(content);
            blobs.Align(8);
        }
        var pe = new ManagedPEBuilder(PEHeaderBuilder.CreateLibraryHeader(), new MetadataRootBuilder(metadata), new BlobBuilder(),
            managedResources: blobs);
        var image = new BlobBuilder();
        pe.Serialize(image);
        File.WriteAllBytes(path, image.ToArray());
    }
}
