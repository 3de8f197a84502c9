using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Funnel.Evaluation;
using Funnel.Inference;
using Funnel.Inference.Packaged;
using Funnel.Retrieval;
using Funnel.Retrieval.Lexical;
using Spectre.Console;

namespace Funnel.Cli.Commands;

/// <summary>
/// <c>funnel eval</c>: retrieval quality on a BEIR dataset (folder or zip) or a TREC DL rerank folder, or a bi-encoder's
/// similarity quality on the STS benchmark. Retrieval runs the first stage (BM25, dense or hybrid; a TREC DL folder ships its
/// BM25 candidates), optionally reranks the top N with a cross-encoder, writes the TREC run file and prints trec_eval-compatible
/// measures; BEIR datasets follow BEIR's protocol (see <see cref="EvaluateBeirAsync"/>).
/// </summary>
internal static class EvalCommand
{
    /// <param name="Exact">dense/hybrid: BEIR's exact search over one vector per document instead of a collection.</param>
    /// <param name="Log">Where model loading says which models it uses (stderr).</param>
    private sealed record Settings(string Dataset, string Split, string Retriever, bool Exact, string? Rerank, double RerankWeight, string? BiEncoder, string? Collection, int? Ef, int? Top, int? K,
        string? RunFile, int? RelevanceLevel, IReadOnlyList<Measure> Measures, int? MaxQueries, EncoderOptions Encoder, TextWriter Log);

    /// <summary>What one evaluation did: the numbers the table and the JSON report.</summary>
    private sealed record Report(string Dataset, string Split, string FirstStage, string? Rerank, double RerankWeight, int Candidates, int Kept, int RelevanceLevel,
        EvaluationResult Result, string RunFile, IReadOnlyList<(string Stage, string Detail, TimeSpan Elapsed)> Stages);

    public static Command Create()
    {
        var dataset = new Option<string>("--dataset", "-d")
        {
            Description = "A BEIR folder or zip, a TREC DL folder (retrieve_results_*.json + qrels*.txt) or an STS benchmark folder (sts-*.csv)", Required = true,
        };
        var split = new Option<string>("--split") { Description = "BEIR qrels split or STS benchmark split", DefaultValueFactory = _ => "test" };
        var retriever = new Option<string>("--retriever") { Description = "First stage: bm25, dense or hybrid (RRF of both); a TREC DL folder always uses its shipped BM25 candidates", DefaultValueFactory = _ => "bm25" };
        retriever.AcceptOnlyFromAmong("bm25", "dense", "hybrid");
        var rerank = new Option<string?>("--rerank") { Description = "Cross-encoder (folder or Hub id; none is packaged) that reranks the top N" };
        Option<double> rerankWeight = CollectionCommandLine.RerankWeightOption();
        var biEncoder = new Option<string?>("--bi-encoder")
        {
            Description = $"Bi-encoder (folder, packaged id or Hub id) for dense and hybrid; default: the --collection's, else {PackagedModels.DefaultBiEncoder.Id} (packaged)",
        };
        var collection = new Option<string?>("--collection") { Description = "Collection folder for dense and hybrid, created and filled with the corpus as needed (default: a cache folder per dataset and bi-encoder)" };
        var ef = new Option<int?>("--ef") { Description = "dense and hybrid through a collection: HNSW candidate list size (default: the collection's --ef-search); larger is more exact and slower" };
        var exact = new Option<bool>("--exact")
        {
            Description = "dense and hybrid without a collection, as BEIR's published numbers: one vector per document (title + text truncated to the model window), exact cosine search",
        };
        var top = new Option<int?>("--top") { Description = "N: first-stage candidates per query (default 100 with --rerank, else 1000; TREC DL: all shipped)" };
        var k = new Option<int?>("--k") { Description = "M: results per query kept in the run (default N)" };
        var runFile = new Option<string?>("--run-file") { Description = "Where to write the TREC run (default runs/DATASET.SPLIT.STAGES.trec)" };
        var relevance = new Option<int?>("--relevance-level") { Description = "Least grade that MRR, recall and MAP count as relevant (default 2 for TREC DL, 1 for BEIR)" };
        var measures = new Option<string[]>("--measure") { Description = "Measures to report (default ndcg@10 mrr@10 recall@100 map)", AllowMultipleArgumentsPerToken = true };
        var maxQueries = new Option<int?>("--max-queries") { Description = "Evaluate only the first Q judged queries (quick checks)" };
        var batch = new Option<int>("--batch-size") { Description = "Cross-encoder pairs per forward pass", DefaultValueFactory = _ => 32 };
        var threads = new Option<int>("--threads") { Description = "Threads to use", DefaultValueFactory = _ => Environment.ProcessorCount };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON instead of a table" };
        Option<string?> precision = ModelOption.Precision();
        var command = new Command("eval", "Evaluate retrieval (and reranking) on a BEIR or TREC DL dataset; writes a TREC run file.")
        {
            dataset, split, retriever, exact, rerank, rerankWeight, biEncoder, collection, ef, top, k, runFile, relevance, measures, maxQueries, batch, threads, json, precision,
        };
        command.SetAction((parse, ct) => CliAction.RunAsync(parse, async output =>
        {
            var settings = new Settings(parse.GetValue(dataset)!, parse.GetValue(split)!, parse.GetValue(retriever)!, parse.GetValue(exact), parse.GetValue(rerank),
                CollectionCommandLine.RerankWeight(parse, rerankWeight, rerank), parse.GetValue(biEncoder), parse.GetValue(collection), parse.GetValue(ef), parse.GetValue(top), parse.GetValue(k), parse.GetValue(runFile), parse.GetValue(relevance), ParseMeasures(parse.GetValue(measures)),
                parse.GetValue(maxQueries), new EncoderOptions
                {
                    BatchSize = parse.GetValue(batch), MaxThreads = parse.GetValue(threads),
                    Precision = ModelOption.ParsePrecision(parse.GetValue(precision)) ?? InferencePrecision.Fp32,
                },
                parse.InvocationConfiguration.Error);
            if (StsBenchmark.IsStsBenchmark(settings.Dataset))
            {
                Option[] retrievalOnly = [retriever, exact, rerank, rerankWeight, collection, ef, top, k, runFile, relevance, measures, maxQueries];
                if (retrievalOnly.FirstOrDefault(o => parse.GetResult(o) is { Implicit: false }) is { } given)
                    throw new UsageException($"{given.Name} is for retrieval datasets (BEIR, TREC DL); an STS benchmark reports the Spearman and Pearson correlation of cosine similarities");
                StsReport sts = await EvaluateStsAsync(settings, ct);
                if (parse.GetValue(json)) output.WriteLine(ToJson(sts));
                else PrintTable(sts, output);
                return 0;
            }
            Validate(settings);
            var stderr = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(parse.InvocationConfiguration.Error) });
            Report report = TrecDlRerankSet.IsRerankSet(settings.Dataset)
                ? await EvaluateTrecDlAsync(settings, stderr, ct)
                : BeirDataset.IsBeir(settings.Dataset)
                    ? await EvaluateBeirAsync(settings, stderr, ct)
                    : throw new UsageException($"--dataset {settings.Dataset}: not a BEIR folder or zip (corpus.jsonl, queries.jsonl, qrels/), a TREC DL folder (retrieve_results_*.json, qrels*.txt) nor an STS benchmark folder (sts-*.csv)");
            if (parse.GetValue(json)) output.WriteLine(ToJson(report));
            else PrintTable(report, output);
            return 0;
        }));
        return command;
    }

    private static IReadOnlyList<Measure> ParseMeasures(string[]? texts)
    {
        if (texts is not { Length: > 0 }) return Measure.Standard;
        try
        {
            return texts.SelectMany(t => t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Select(Measure.Parse).Distinct().ToList();
        }
        catch (FormatException e)
        {
            throw new UsageException($"--measure: {e.Message}");
        }
    }

    private static void Validate(Settings s)
    {
        if (s.RunFile is { } run && (Directory.Exists(run) || run.EndsWith('/') || run.EndsWith(Path.DirectorySeparatorChar)))
            throw new UsageException($"--run-file '{run}' is a folder; give the path of the run file to write (e.g. {Path.Combine(run, "nfcorpus.test.trec")})");
        if (s.Ef is < 1) throw new UsageException($"--ef must be at least 1 (got {s.Ef})");
        if (s.Ef != null && (s.Retriever == "bm25" || s.Exact)) throw new UsageException("--ef is for --retriever dense or hybrid through a collection (HNSW)");
        if (s.Top is < 1) throw new UsageException($"--top must be at least 1 (got {s.Top})");
        if (s.K is < 1) throw new UsageException($"--k must be at least 1 (got {s.K})");
        if (s.MaxQueries is < 1) throw new UsageException($"--max-queries must be at least 1 (got {s.MaxQueries})");
        if (s.RelevanceLevel is < 0) throw new UsageException($"--relevance-level must be at least 0 (got {s.RelevanceLevel})");
        if (s.Encoder.BatchSize < 1) throw new UsageException($"--batch-size must be at least 1 (got {s.Encoder.BatchSize})");
        if (s.Encoder.MaxThreads < 1) throw new UsageException($"--threads must be at least 1 (got {s.Encoder.MaxThreads})");
        if (s.Retriever != "bm25" && TrecDlRerankSet.IsRerankSet(s.Dataset))
            throw new UsageException($"--retriever {s.Retriever}: a TREC DL rerank folder has no corpus to index; its first stage is the shipped BM25 candidates (use --retriever bm25)");
        if (s.Retriever == "bm25" && (s.BiEncoder != null || s.Collection != null || s.Exact))
            throw new UsageException("--bi-encoder, --collection and --exact are for --retriever dense or hybrid");
        if (s.Exact && s.Collection != null)
            throw new UsageException("--exact searches vectors held in memory, without a collection; leave out --collection (or --exact)");
    }

    private static async Task<Report> EvaluateTrecDlAsync(Settings s, IAnsiConsole stderr, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var set = TrecDlRerankSet.Load(s.Dataset);
        var queries = set.Queries.Where(q => set.Qrels[q.Id] != null).Take(s.MaxQueries ?? int.MaxValue).ToList();
        int shipped = queries.Count == 0 ? 0 : queries.Max(q => q.Candidates.Count);
        int candidates = Math.Max(1, Math.Min(s.Top ?? shipped, shipped));
        int kept = Math.Min(s.K ?? candidates, candidates);
        var stages = new List<(string, string, TimeSpan)> { ("load", $"{queries.Count} judged queries × {shipped} BM25 candidates", clock.Elapsed) };
        using CrossEncoder? reranker = await LoadCrossEncoderAsync(s, stages, ct);
        var pipeline = new SearchPipeline(new ShippedCandidates(queries), reranker);
        var options = new SearchOptions { Candidates = candidates, Results = kept, Rerank = reranker != null, RerankWeight = s.RerankWeight };
        Run run = await SearchAllAsync(stderr, pipeline, [.. queries.Select(q => (q.Id, q.Text, options))], "bm25", stages, ct);
        return Conclude(s, set.Name, "dl", $"bm25 (shipped) top {candidates}", run, candidates, kept, set.Qrels.Restrict(queries.Select(q => q.Id)),
            new EvaluationOptions(s.RelevanceLevel ?? TrecDlRerankSet.RelevanceThreshold), stages);
    }

    /// <summary>
    /// A BEIR dataset under BEIR's protocol (beir.retrieval): the queries judged in the split; every first stage fetches one
    /// candidate more than N and drops the query's own id, so N others remain (DenseRetrievalExactSearch's rule, for corpora that
    /// hold their queries); a reranker sees those N; evaluation ignores identical query and document ids
    /// (EvaluateRetrieval.evaluate) and computes trec_eval's measures over the judged queries.
    /// </summary>
    private static async Task<Report> EvaluateBeirAsync(Settings s, IAnsiConsole stderr, CancellationToken ct)
    {
        using var dataset = BeirDataset.Open(s.Dataset);
        var qrels = dataset.ReadQrels(s.Split);
        var queries = (await dataset.ReadQueriesAsync(ct)).Where(q => qrels[q.Id] != null).Take(s.MaxQueries ?? int.MaxValue).ToList();
        qrels = qrels.Restrict(queries.Select(q => q.Id));
        int candidates = s.Top ?? (s.Rerank != null ? 100 : 1000);
        var stages = new List<(string, string, TimeSpan)>();
        return s.Retriever != "bm25" && !s.Exact
            ? await EvaluateWithCollectionAsync(s, stderr, dataset, qrels, queries, candidates, stages, ct)
            : await EvaluateInMemoryAsync(s, stderr, dataset, qrels, queries, candidates, stages, ct);
    }

    /// <summary>bm25, or dense and hybrid with --exact: first stages built in memory from the corpus on every run.</summary>
    private static async Task<Report> EvaluateInMemoryAsync(Settings s, IAnsiConsole stderr, BeirDataset dataset, Qrels qrels, List<BeirQuery> queries,
        int candidates, List<(string, string, TimeSpan)> stages, CancellationToken ct)
    {
        bool lexical = s.Retriever != "dense", dense = s.Retriever != "bm25";
        var index = lexical ? new Bm25Index() : null;
        // Only a reranker reads the texts: without one, candidates are ids and scores and the corpus is not held.
        var documents = s.Rerank != null ? new Dictionary<string, Document>(StringComparer.Ordinal) : null;
        using SentenceEncoder? biEncoder = dense ? await LoadBiEncoderAsync(s, s.BiEncoder ?? PackagedModels.DefaultBiEncoder.Id, stages, ct) : null;

        // One pass over the corpus feeds BM25, the reranker's texts and the exact vectors.
        var clock = Stopwatch.StartNew();
        int count = 0;
        IAsyncEnumerable<Document> corpus = dataset.ReadCorpusAsync(ct).Select(doc =>
        {
            index?.Add(doc.Id, doc.FullText);
            if (documents != null) documents[doc.Id] = doc;
            count++;
            return doc;
        });
        using ExactDenseSearch? exact = await WithProgressAsync(stderr, dense ? $"embedding {dataset.Name}" : $"indexing {dataset.Name}", total: null, async progress =>
        {
            if (biEncoder != null) return await ExactDenseSearch.BuildAsync(biEncoder, corpus, progress: progress, ct: ct);
            await foreach (var _ in corpus.WithCancellation(ct)) if (count % 256 == 0) progress.Report(count);
            return null;
        });
        if (index != null) stages.Add(("bm25 index", $"{count:N0} documents", clock.Elapsed));
        if (exact != null) stages.Add(("exact vectors", $"{exact.Count:N0} documents embedded (one vector each, truncated to {biEncoder!.MaxSequenceLength} tokens)", clock.Elapsed));

        Func<string, Document?>? lookup = documents is null ? null : id => documents.GetValueOrDefault(id);
        IRetriever? bm25 = index is null ? null : new Bm25Retriever(index, lookup);
        IRetriever? exactDense = exact?.AsRetriever(biEncoder!, lookup);
        IRetriever retriever = s.Retriever switch
        {
            "bm25" => bm25!,
            "dense" => exactDense!,
            _ => new HybridRetriever(exactDense!, bm25!),
        };
        int kept = Math.Min(s.K ?? candidates, candidates);
        using CrossEncoder? reranker = await LoadCrossEncoderAsync(s, stages, ct);
        var pipeline = new SearchPipeline(retriever, reranker);
        var options = new SearchOptions { Candidates = candidates, Results = kept, Rerank = reranker != null, RerankWeight = s.RerankWeight };
        Run run = await SearchAllAsync(stderr, pipeline, BeirSearches(queries, options), s.Exact ? $"{s.Retriever}.exact" : s.Retriever, stages, ct);
        string firstStage = s.Exact ? $"{s.Retriever} (exact: one vector per document) top {candidates}" : $"bm25 top {candidates}";
        return Conclude(s, dataset.Name, s.Split, firstStage, run, candidates, kept, qrels, BeirEvaluation(s), stages);
    }

    /// <summary>BEIR's rule for a corpus holding the query: each retriever drops the query's own id before fusion and reranking.</summary>
    private static List<(string Id, string Text, SearchOptions Options)> BeirSearches(IEnumerable<BeirQuery> queries, SearchOptions options) =>
        [.. queries.Select(q => (q.Id, q.Text, options with { Exclude = new HashSet<string>(StringComparer.Ordinal) { q.Id } }))];

    /// <summary>
    /// Every query through the one search pipeline (the library's, the CLI's and the service's), into a run tagged
    /// <paramref name="firstStage"/> (".rerank" added when the pipeline reranks, "-wW" when it blends); the stages say where the time went.
    /// </summary>
    private static async Task<Run> SearchAllAsync(IAnsiConsole stderr, SearchPipeline pipeline, IReadOnlyList<(string Id, string Text, SearchOptions Options)> searches,
        string firstStage, List<(string, string, TimeSpan)> stages, CancellationToken ct)
    {
        bool reranking = pipeline.Reranker != null;
        double weight = searches.Count > 0 ? searches[0].Options.RerankWeight : 1;
        var run = new Run(reranking ? $"{firstStage}.rerank{(weight < 1 ? "-w" + WeightText(weight) : "")}" : firstStage);
        TimeSpan embed = default, retrieve = default, fuse = default, rerank = default;
        long pairs = 0;
        await WithProgressAsync(stderr, reranking ? "reranking" : $"{firstStage} search", searches.Count, async progress =>
        {
            int done = 0;
            await foreach (var (id, response) in pipeline.SearchManyAsync(searches, ct))
            {
                run.Add(id, response.Results.Select(r => new ScoredDocument(r.DocumentId, r.Score)));
                (embed, retrieve, fuse, rerank) = (embed + response.Timings.Embed, retrieve + response.Timings.Retrieve, fuse + response.Timings.Fuse, rerank + response.Timings.Rerank);
                if (reranking) pairs += response.Candidates;
                progress.Report(++done);
            }
            return done;
        });
        stages.Add(("search", string.Create(CultureInfo.InvariantCulture,
            $"{searches.Count} queries; embed {embed.TotalSeconds:F2} s, retrieve {retrieve.TotalSeconds:F2} s, fuse {fuse.TotalSeconds:F2} s"), embed + retrieve + fuse));
        if (reranking)
        {
            double seconds = Math.Max(rerank.TotalSeconds, 1e-9);
            stages.Add(("rerank", string.Create(CultureInfo.InvariantCulture,
                $"{pairs:N0} pairs, {pairs / seconds:F1} pairs/s, {searches.Count / seconds:F2} queries/s"), rerank));
        }
        return run;
    }

    private static async Task<CrossEncoder?> LoadCrossEncoderAsync(Settings s, List<(string, string, TimeSpan)> stages, CancellationToken ct)
    {
        if (s.Rerank == null) return null;
        var clock = Stopwatch.StartNew();
        var encoder = CrossEncoder.Load(await ModelFolders.ResolveAsync(s.Rerank, "cross-encoder", s.Log, ct), s.Encoder);
        stages.Add(("load cross-encoder", s.Rerank, clock.Elapsed));
        return encoder;
    }

    /// <summary>An STS benchmark split through a bi-encoder: what <see cref="StsEvaluation"/> measures.</summary>
    private sealed record StsReport(string Dataset, string Split, string BiEncoder, StsResult Result, TimeSpan Elapsed);

    private static void PrintTable(StsReport r, TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        console.MarkupLineInterpolated($"[bold]{r.Dataset}[/] ({r.Split}): cosine similarity of {r.Result.Pairs:N0} sentence pairs, bi-encoder {r.BiEncoder}");
        var table = new Table().AddColumn("measure").AddColumn(new TableColumn("value").RightAligned()).AddColumn("sentence-transformers");
        table.AddRow("Spearman", r.Result.Spearman.ToString("F4", CultureInfo.InvariantCulture), "spearman_cosine");
        table.AddRow("Pearson", r.Result.Pearson.ToString("F4", CultureInfo.InvariantCulture), "pearson_cosine");
        console.Write(table);
        console.MarkupLineInterpolated($"[grey]embedded and scored in {r.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s[/]");
    }

    private static async Task<StsReport> EvaluateStsAsync(Settings s, CancellationToken ct)
    {
        var pairs = StsBenchmark.ReadSplit(s.Dataset, s.Split);
        string model = s.BiEncoder ?? PackagedModels.DefaultBiEncoder.Id;
        using var biEncoder = SentenceEncoder.Load(await ModelFolders.ResolveAsync(model, "bi-encoder", s.Log, ct), s.Encoder);
        var clock = Stopwatch.StartNew();
        StsResult result = StsEvaluation.Evaluate(biEncoder, pairs, ct);
        return new StsReport(Path.GetFileName(Path.GetFullPath(s.Dataset).TrimEnd(Path.DirectorySeparatorChar)), s.Split, model, result, clock.Elapsed);
    }

    private static string ToJson(StsReport r) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["dataset"] = r.Dataset,
        ["split"] = r.Split,
        ["biEncoder"] = r.BiEncoder,
        ["pairs"] = r.Result.Pairs,
        ["metrics"] = new Dictionary<string, double> { ["Spearman"] = r.Result.Spearman, ["Pearson"] = r.Result.Pearson },
        ["seconds"] = r.Elapsed.TotalSeconds,
    }, new JsonSerializerOptions { WriteIndented = true });

    /// <summary>BEIR evaluates with pytrec_eval's default relevance level (1) and ignores identical query and document ids.</summary>
    private static EvaluationOptions BeirEvaluation(Settings s) => new(s.RelevanceLevel ?? 1, IgnoreIdenticalIds: true);

    private static async Task<SentenceEncoder> LoadBiEncoderAsync(Settings s, string model, List<(string, string, TimeSpan)> stages, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var biEncoder = SentenceEncoder.Load(await ModelFolders.ResolveAsync(model, "bi-encoder", s.Log, ct), s.Encoder);
        stages.Add(("load bi-encoder", model, clock.Elapsed));
        return biEncoder;
    }

    /// <summary>dense or hybrid: index the corpus into a collection (only what it lacks), then query it through the search pipeline.</summary>
    private static async Task<Report> EvaluateWithCollectionAsync(Settings s, IAnsiConsole stderr, BeirDataset dataset, Qrels qrels, List<BeirQuery> queries,
        int candidates, List<(string, string, TimeSpan)> stages, CancellationToken ct)
    {
        int kept = Math.Min(s.K ?? candidates, candidates);
        bool exists = s.Collection != null && File.Exists(Path.Combine(s.Collection, CollectionManifest.FileName));
        string model = s.BiEncoder ?? (exists ? CollectionManifest.Read(s.Collection!).BiEncoder.Reference : PackagedModels.DefaultBiEncoder.Id);
        using var biEncoder = await LoadBiEncoderAsync(s, model, stages, ct);
        string folder = s.Collection ?? Path.Combine(FunnelHome.Resolve(), "eval", $"{dataset.Name}-{CacheKey(biEncoder.Fingerprint)}");
        using var collection = Collection.OpenOrCreate(folder, biEncoder);

        var clock = Stopwatch.StartNew();
        IndexingProgress indexed = await WithProgressAsync(stderr, $"indexing {dataset.Name}", total: null, progress =>
            CollectionIndexer.IndexAsync(collection, biEncoder, dataset.ReadCorpusAsync(ct), progress: new IndexingCount(progress), ct: ct));
        stages.Add(("collection", $"{collection.Folder}: {indexed.DocumentsWritten:N0} documents embedded, {indexed.DocumentsUnchanged:N0} already there", clock.Elapsed));

        using CrossEncoder? reranker = await LoadCrossEncoderAsync(s, stages, ct);
        var pipeline = new SearchPipeline(collection, biEncoder, reranker);
        var options = new SearchOptions
        {
            Retriever = s.Retriever == "dense" ? Retriever.Dense : Retriever.Hybrid, Candidates = candidates, Results = kept, Rerank = reranker != null,
            RerankWeight = s.RerankWeight, EfSearch = s.Ef,
        };
        Run run = await SearchAllAsync(stderr, pipeline, BeirSearches(queries, options), s.Retriever, stages, ct);
        return Conclude(s, dataset.Name, s.Split, $"{s.Retriever} top {candidates}", run, candidates, kept, qrels, BeirEvaluation(s), stages);
    }

    /// <summary>
    /// Names the cached collection of a bi-encoder: its weights, and its prompts when it has any, so that the same weights
    /// with other prompts (which give other vectors) get their own collection; vectors of another precision than fp32 too.
    /// </summary>
    private static string CacheKey(ModelFingerprint f) =>
        (f.QueryPrompt is null && f.DocumentPrompt is null ? f.WeightsSha256[..12]
            : Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
                System.Text.Encoding.UTF8.GetBytes($"{f.WeightsSha256}\n{f.QueryPrompt}\n{f.DocumentPrompt}")))[..12])
        + (f.Precision == InferencePrecision.Fp32 ? "" : "-" + f.Precision.ToString().ToLowerInvariant());

    /// <summary>Shows indexing progress as the number of documents read.</summary>
    private sealed class IndexingCount(IProgress<int> inner) : IProgress<IndexingProgress>
    {
        public void Report(IndexingProgress value) => inner.Report((int)value.DocumentsRead);
    }

    /// <summary>Writes the run file and evaluates it.</summary>
    private static Report Conclude(Settings s, string name, string split, string firstStage, Run run, int depth, int kept, Qrels qrels, EvaluationOptions evaluation,
        List<(string, string, TimeSpan)> stages)
    {
        string runFile = s.RunFile ?? Path.Combine("runs", $"{name}.{split}.{run.Tag}.trec");
        run.WriteTrec(runFile);
        var result = Metrics.Evaluate(qrels, run, s.Measures, evaluation);
        return new Report(name, split, firstStage, s.Rerank, s.RerankWeight, depth, kept, evaluation.RelevanceThreshold, result, Path.GetFullPath(runFile), stages);
    }

    /// <summary>Runs <paramref name="work"/> under a Spectre progress bar on stderr; when stderr is not a terminal (a log, CI),
    /// plain lines at each tenth of the work instead, so a long rerank is not silent for minutes.</summary>
    private static async Task<T> WithProgressAsync<T>(IAnsiConsole stderr, string description, int? total, Func<IProgress<int>, Task<T>> work)
    {
        if (!stderr.Profile.Capabilities.Interactive)
        {
            stderr.MarkupLineInterpolated($"[grey]{description}…[/]");
            var lines = new LineProgress(stderr, description, total);
            T done = await work(lines);
            lines.Finish();
            return done;
        }
        return await stderr.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(Markup.Escape(description), maxValue: Math.Max(1, total ?? 1));
                task.IsIndeterminate = total == null;
                var result = await work(new BarProgress(task, description, total == null));
                task.Value = task.MaxValue;
                return result;
            });
    }

    /// <summary>
    /// "reranking: 130/323 (40%)" each time the count passes a tenth of <c>total</c> (each 1,000 when the total is
    /// unknown), and once at the end. Reports may come from several threads.
    /// </summary>
    private sealed class LineProgress(IAnsiConsole stderr, string description, int? total) : IProgress<int>
    {
        private readonly Lock _gate = new();
        private readonly int _step = total is { } n ? Math.Max(1, (n + 9) / 10) : 1000;
        private int _last;
        private int _printed;

        public void Report(int value)
        {
            lock (_gate)
            {
                _last = Math.Max(_last, value);
                if (_last / _step > _printed / _step) Print(_last);
            }
        }

        public void Finish()
        {
            lock (_gate)
                if (_last > _printed) Print(_last);
        }

        private void Print(int value)
        {
            _printed = value;
            stderr.WriteLine(total is { } n && n > 0 ? $"{description}: {value:N0}/{n:N0} ({100L * value / n}%)" : $"{description}: {value:N0}");
        }
    }

    /// <summary>Moves a bar synchronously (Progress&lt;T&gt; would post to a thread pool and could land after the bar is gone).</summary>
    private sealed class BarProgress(ProgressTask task, string description, bool countInDescription) : IProgress<int>
    {
        public void Report(int value)
        {
            if (countInDescription) task.Description = Markup.Escape($"{description} ({value:N0})");
            else task.Value = value;
        }
    }

    private static string WeightText(double weight) => weight.ToString("0.###", CultureInfo.InvariantCulture);

    private static string Blend(double weight) =>
        weight < 1 ? $" blended with the first stage by reciprocal rank (rerank weight {WeightText(weight)})" : "";

    private static void PrintTable(Report r, TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        string stages = r.Rerank != null ? $"{r.FirstStage} → rerank with {r.Rerank}{Blend(r.RerankWeight)} → top {r.Kept}" : $"{r.FirstStage}, run keeps {r.Kept}";
        console.MarkupLineInterpolated($"[bold]{r.Dataset}[/] ({r.Split}): {stages}");
        var table = new Table()
            .AddColumn("measure")
            .AddColumn(new TableColumn("value").RightAligned())
            .AddColumn("trec_eval");
        foreach (var m in r.Result.Measures)
            table.AddRow(Markup.Escape(m.ToString()), r.Result.Mean(m).ToString("F4", CultureInfo.InvariantCulture), Markup.Escape(m.TrecEvalName));
        console.Write(table);
        console.MarkupLineInterpolated($"[grey]{r.Result.QueryCount} queries; MRR, recall and MAP count grade ≥ {r.RelevanceLevel} as relevant; nDCG gains are the grades[/]");
        foreach (var (stage, detail, elapsed) in r.Stages)
            console.MarkupLineInterpolated($"[grey]{stage}: {detail} in {elapsed.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)} s[/]");
        console.MarkupLineInterpolated($"run file: {r.RunFile}");
    }

    private static string ToJson(Report r) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["dataset"] = r.Dataset,
        ["split"] = r.Split,
        ["firstStage"] = r.FirstStage,
        ["rerank"] = r.Rerank,
        ["rerankWeight"] = r.Rerank is null ? null : r.RerankWeight,
        ["candidates"] = r.Candidates,
        ["kept"] = r.Kept,
        ["queries"] = r.Result.QueryCount,
        ["relevanceLevel"] = r.RelevanceLevel,
        ["metrics"] = r.Result.Measures.ToDictionary(m => m.ToString(), m => r.Result.Mean(m)),
        ["runFile"] = r.RunFile,
        ["stages"] = r.Stages.Select(st => new Dictionary<string, object> { ["stage"] = st.Stage, ["detail"] = st.Detail, ["seconds"] = st.Elapsed.TotalSeconds }).ToList(),
    }, new JsonSerializerOptions { WriteIndented = true });
}
