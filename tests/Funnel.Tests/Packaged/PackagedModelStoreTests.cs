using System.Text.Json;
using Funnel.Inference;
using Funnel.Inference.Packaged;
using Funnel.Tests.Tokenization;

namespace Funnel.Tests.Packaged;

/// <summary>Materialization from a small fake package: layout, idempotence, repair, refusal, concurrency.</summary>
public sealed class PackagedModelStoreTests : IDisposable
{
    private readonly TempFolder _root = new();
    private readonly FakePackage _package;

    public PackagedModelStoreTests() => _package = new FakePackage(Path.Combine(_root.Path, "nuget"));

    public void Dispose() => _root.Dispose();

    private string ModelsDirectory => Path.Combine(_root.Path, "funnel", "models");

    private PackagedModelStore Store(params string[] packageFolders) => new(new PackagedModelOptions
    {
        ModelsDirectory = ModelsDirectory,
        PackageFolders = packageFolders.Length > 0 ? packageFolders : [Path.Combine(_root.Path, "empty"), _package.PackagesRoot],
    });

    [Fact]
    public async Task Writes_a_sentence_transformers_folder_with_provenance()
    {
        string folder = await Store().MaterializeAsync(_package.Model);

        Assert.Equal(Path.Combine(ModelsDirectory, "test-org", "tiny-encoder"), folder);
        Assert.Equal(_package.Onnx, File.ReadAllBytes(Path.Combine(folder, "model.onnx")));
        Assert.Equal(_package.Vocab, File.ReadAllBytes(Path.Combine(folder, "vocab.txt")));
        var st = SentenceTransformerConfig.Load(folder);
        Assert.Equal((PoolingMode.Cls, true, 128), (st.Pooling, st.Normalize, st.MaxSeqLength));
        Assert.Equal("query: ", st.Prompts["query"]);
        Assert.Null(st.DefaultPromptName);
        BertConfig bert = BertConfig.Load(folder);
        Assert.Equal((BertArchitecture.BertModel, 384, 6, 12, 1536, 30522, 512, 2, 1e-12f), (bert.Architecture, bert.HiddenSize, bert.Layers, bert.Heads,
            bert.IntermediateSize, bert.VocabSize, bert.MaxPositionEmbeddings, bert.TypeVocabSize, bert.LayerNormEps));
        Assert.Equal(30522, Funnel.Tokenization.BertTokenizer.FromFolder(folder).VocabSize);

        using JsonDocument provenance = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "funnel-package.json")));
        JsonElement root = provenance.RootElement;
        Assert.Equal("test-org/tiny-encoder", root.GetProperty("id").GetString());
        Assert.Equal(FakePackage.PackageId, root.GetProperty("package_id").GetString());
        Assert.Equal(FakePackage.Version, root.GetProperty("package_version").GetString());
        Assert.Equal(_package.AssemblyPath, root.GetProperty("assembly").GetString());
        JsonElement onnx = root.GetProperty("files").GetProperty("model.onnx");
        Assert.Equal(_package.Model.OnnxSha256, onnx.GetProperty("sha256").GetString());
        Assert.Equal(_package.Onnx.Length, onnx.GetProperty("size").GetInt64());
        Assert.Equal("Test.TinyEncoder.Resources.model.onnx", onnx.GetProperty("resource").GetString());
        Assert.Equal(PackagedModelFiles.VocabSha256, root.GetProperty("files").GetProperty("vocab.txt").GetProperty("sha256").GetString());
        Assert.Empty(Directory.GetFiles(folder, "*.tmp", SearchOption.AllDirectories));

        var source = ModelSource.Of(folder);
        Assert.Equal(new ModelSource(ModelSourceKind.Package, "test-org/tiny-encoder", FakePackage.PackageId, FakePackage.Version), source);
    }

    [Fact]
    public async Task A_complete_folder_is_used_as_it_is()
    {
        PackagedModelStore store = Store();
        string folder = await store.MaterializeAsync(_package.Model);
        var written = Directory.GetFiles(folder, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.GetLastWriteTimeUtc);
        File.Delete(_package.AssemblyPath); // a complete folder does not need the package any more

        Assert.Equal(folder, store.TryGetComplete(_package.Model));
        Assert.Equal(folder, await store.MaterializeAsync(_package.Model));
        Assert.All(written, w => Assert.Equal(w.Value, File.GetLastWriteTimeUtc(w.Key)));
    }

    public static TheoryData<string> Damages => new() { "no provenance", "truncated weights", "edited config", "other version", "unreadable provenance" };

    [Theory]
    [MemberData(nameof(Damages))]
    public async Task An_incomplete_or_damaged_folder_is_written_again(string damage)
    {
        PackagedModelStore store = Store();
        string folder = await store.MaterializeAsync(_package.Model);
        string provenance = Path.Combine(folder, "funnel-package.json");
        switch (damage)
        {
            case "no provenance": File.Delete(provenance); break;
            case "truncated weights": File.WriteAllBytes(Path.Combine(folder, "model.onnx"), _package.Onnx[..1000]); break;
            case "edited config": File.WriteAllText(Path.Combine(folder, "1_Pooling", "config.json"), "{\"pooling_mode_mean_tokens\": true}"); break;
            case "other version": File.WriteAllText(provenance, File.ReadAllText(provenance).Replace(FakePackage.Version, "0.0.1")); break;
            default: File.WriteAllText(provenance, "{\"id\": "); break;
        }
        Assert.Null(store.TryGetComplete(_package.Model));

        Assert.Equal(folder, await store.MaterializeAsync(_package.Model));

        Assert.Equal(folder, store.TryGetComplete(_package.Model));
        Assert.Equal(_package.Onnx, File.ReadAllBytes(Path.Combine(folder, "model.onnx")));
        Assert.Equal(PoolingMode.Cls, SentenceTransformerConfig.Load(folder).Pooling);
    }

    [Fact]
    public async Task Weights_that_differ_from_the_catalogue_are_refused_and_leave_no_folder_behind()
    {
        PackagedModel wrong = _package.Model with { OnnxSha256 = new string('0', 64) };

        var error = await Assert.ThrowsAsync<ModelFormatException>(() => Store().MaterializeAsync(wrong));

        Assert.Contains(_package.AssemblyPath, error.Message);
        Assert.Contains($"resource 'Test.TinyEncoder.Resources.model.onnx' has sha256 {_package.Model.OnnxSha256}, expected {wrong.OnnxSha256}", error.Message);
        string folder = Store().FolderOf(wrong);
        Assert.Empty(Directory.GetFiles(folder, "*", SearchOption.AllDirectories));
        Assert.Null(Store().TryGetComplete(wrong));
    }

    [Fact]
    public async Task A_package_without_the_vocabulary_is_refused_by_resource_name()
    {
        var broken = new FakePackage(Path.Combine(_root.Path, "broken"), withVocab: false);

        var error = await Assert.ThrowsAsync<ModelFormatException>(() => Store(broken.PackagesRoot).MaterializeAsync(broken.Model));

        Assert.Contains("no manifest resource 'Test.TinyEncoder.Resources.vocab.txt'", error.Message);
        Assert.False(File.Exists(Path.Combine(Store().FolderOf(broken.Model), "funnel-package.json")));
    }

    [Fact]
    public async Task A_missing_package_is_named_with_where_it_was_looked_for_and_how_to_get_it()
    {
        string nowhere = Path.Combine(_root.Path, "no-packages-here");

        var error = await Assert.ThrowsAsync<FileNotFoundException>(() => Store(nowhere).MaterializeAsync(_package.Model));

        Assert.Contains("NuGet package Test.TinyEncoder 1.2.3", error.Message);
        Assert.Contains($"searched: {nowhere}", error.Message);
        Assert.Contains("dotnet restore src/Funnel/Funnel.csproj", error.Message);
        Assert.Contains("NUGET_PACKAGES", error.Message);
        Assert.Contains("test-org/tiny-encoder@main", error.Message);
    }

    [Fact]
    public async Task Concurrent_writers_leave_one_complete_folder()
    {
        string[] folders = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => Store().MaterializeAsync(_package.Model))));

        Assert.Single(folders.Distinct());
        Assert.Equal(_package.Onnx, File.ReadAllBytes(Path.Combine(folders[0], "model.onnx")));
        Assert.NotNull(Store().TryGetComplete(_package.Model));
        Assert.Empty(Directory.GetFiles(folders[0], "*.tmp", SearchOption.AllDirectories));
    }
}
