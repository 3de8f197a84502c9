using Funnel.Inference;
using Funnel.Inference.Packaged;
using Funnel.Tests.Tokenization;

namespace Funnel.Tests.Packaged;

public sealed class ManifestResourcesTests
{
    [Fact]
    public void Each_resource_is_found_at_its_own_bytes()
    {
        using var folder = new TempFolder();
        string dll = Path.Combine(folder.Path, "Three.dll");
        byte[] empty = [], odd = [1, 2, 3], large = [.. Enumerable.Range(0, 70_001).Select(i => (byte)(i * 31))];
        FakePackage.WriteAssembly(dll, "Three", [("a.bin", odd), ("b.empty", empty), ("c.large", large)]);

        foreach (var (name, content) in new[] { ("a.bin", odd), ("b.empty", empty), ("c.large", large) })
        {
            ResourceSpan span = ManifestResources.Locate(dll, name);
            Assert.Equal(content.Length, span.Length);
            Assert.Equal(content, File.ReadAllBytes(dll).AsSpan((int)span.Offset, (int)span.Length).ToArray());
        }
    }

    [Fact]
    public void A_missing_resource_is_named_with_the_ones_there_are()
    {
        using var folder = new TempFolder();
        string dll = Path.Combine(folder.Path, "One.dll");
        FakePackage.WriteAssembly(dll, "One", [("One.Resources.vocab.txt", [65])]);

        var error = Assert.Throws<ModelFormatException>(() => ManifestResources.Locate(dll, "One.Resources.model.onnx"));

        Assert.Contains(dll, error.Message);
        Assert.Contains("no manifest resource 'One.Resources.model.onnx' (it has: One.Resources.vocab.txt)", error.Message);
    }

    [Fact]
    public void A_file_that_is_no_assembly_is_refused_by_name()
    {
        using var folder = new TempFolder();
        string notPe = Path.Combine(folder.Path, "model.dll");
        File.WriteAllText(notPe, "this is not a portable executable, just text long enough to have a header's worth of bytes");

        var error = Assert.Throws<ModelFormatException>(() => ManifestResources.Locate(notPe, "x"));

        Assert.StartsWith(notPe + ": not a valid .NET assembly", error.Message);
    }

    [Fact]
    public void The_real_packages_hold_the_catalogued_onnx_export_and_vocabulary()
    {
        var store = new PackagedModelStore(PackagedModelOptions.FromEnvironment());
        foreach (PackagedModel model in PackagedModels.All)
        {
            string dll = store.LocatePackage(model);
            ResourceSpan onnx = ManifestResources.Locate(dll, model.OnnxResource);
            Assert.Equal(model.OnnxLength, onnx.Length);
            // An ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
            using var file = File.OpenRead(dll);
            file.Position = onnx.Offset;
            Assert.Equal(0x08, file.ReadByte());
            // 30,522 tokens with CRLF line ends: 231,508 bytes of LF vocabulary plus one CR per line.
            Assert.Equal(231_508 + 30_522, ManifestResources.Locate(dll, model.VocabResource).Length);
        }
    }
}
