using System.CommandLine;
using System.Text.Json;
using Funnel.Inference;
using Funnel.Retrieval;
using Spectre.Console;

namespace Funnel.Cli.Commands;

/// <summary><c>funnel search</c>: retrieve (dense | bm25 | hybrid), optionally rerank, and print a table or JSON.</summary>
internal static class SearchCommand
{
    public static Command Create()
    {
        Option<string> collection = CollectionCommandLine.CollectionOption();
        var query = new Argument<string>("query") { Description = "The query text." };
        var retriever = new Option<Retriever>("--retriever", "-r") { Description = "First stage.", DefaultValueFactory = _ => Retriever.Hybrid };
        Option<string?> biEncoder = CollectionCommandLine.BiEncoderOption("Bi-encoder model folder, packaged id or Hub id (default: the collection's).");
        var rerank = new Option<string?>("--rerank") { Description = "Cross-encoder model folder or Hub id (none is packaged); reranks the top N. Without it, first-stage order." };
        var top = new Option<int>("--top", "-n") { Description = "N: candidates from the first stage.", DefaultValueFactory = _ => new SearchOptions().Candidates };
        var k = new Option<int>("--k", "-k") { Description = "M: results to print.", DefaultValueFactory = _ => new SearchOptions().Results };
        var rrfK = new Option<int>("--rrf-k") { Description = "k of reciprocal rank fusion (hybrid, and the rerank blend).", DefaultValueFactory = _ => ReciprocalRankFusion.DefaultK };
        Option<double> rerankWeight = CollectionCommandLine.RerankWeightOption();
        var filter = new Option<string[]>("--filter") { Description = "key=value metadata filter; repeat to require several.", AllowMultipleArgumentsPerToken = false };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var ef = new Option<int?>("--ef") { Description = "HNSW candidate list size for this search (default: the collection's --ef-search); larger is more exact and slower." };

        Option<string?> precision = CollectionCommandLine.PrecisionOption();
        var command = new Command("search", "Search a collection: first stage, then optional cross-encoder rerank.")
        {
            collection, query, retriever, biEncoder, rerank, rerankWeight, top, k, rrfK, filter, json, ef, precision,
        };
        command.SetAction((parse, ct) => CliAction.RunAsync(parse, async output =>
        {
            string text = parse.GetValue(query)!;
            if (Document.QueryProblem(text) is { } blank) throw new UsageException(blank);
            var options = new SearchOptions
            {
                Retriever = parse.GetValue(retriever),
                Candidates = parse.GetValue(top),
                Results = parse.GetValue(k),
                RrfK = parse.GetValue(rrfK),
                RerankWeight = CollectionCommandLine.RerankWeight(parse, rerankWeight, rerank),
                Filter = parse.GetValue(filter) is { Length: > 0 } terms ? MetadataFilter.Parse(terms) : null,
                EfSearch = parse.GetValue(ef),
            };
            if (options.EfSearch is < 1) throw new ArgumentException($"--ef must be at least 1 (got {options.EfSearch})");
            options.Validate();
            using Collection target = Collection.Open(parse.GetValue(collection)!, readOnly: true);
            using SentenceEncoder? encoder = options.Retriever == Retriever.Bm25 ? null : await CollectionCommandLine.LoadBiEncoderAsync(parse, parse.GetValue(biEncoder), target.Manifest, ct, parse.GetValue(precision));
            var crossOptions = new EncoderOptions { Precision = ModelOption.ParsePrecision(parse.GetValue(precision)) ?? InferencePrecision.Fp32 };
            using CrossEncoder? crossEncoder = parse.GetValue(rerank) is { } model
                ? CrossEncoder.Load(await ModelOption.ResolveAsync(parse, model, "cross-encoder", ct), crossOptions) : null;
            var pipeline = new SearchPipeline(target, encoder, crossEncoder);
            SearchResponse response = await pipeline.SearchAsync(text, options, ct);
            if (parse.GetValue(json)) output.WriteLine(JsonSerializer.Serialize(ToJson(response), JsonOptions));
            else Render(response, AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) }));
            return 0;
        }));
        return command;
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // a terminal shows text, not HTML
    };

    private static object ToJson(SearchResponse r) => new
    {
        query = r.Query,
        timingsMs = new
        {
            embed = r.Timings.Embed.TotalMilliseconds, retrieve = r.Timings.Retrieve.TotalMilliseconds,
            fuse = r.Timings.Fuse.TotalMilliseconds, rerank = r.Timings.Rerank.TotalMilliseconds, total = r.Timings.Total.TotalMilliseconds,
        },
        results = r.Results.Select(x => new
        {
            rank = x.Rank, id = x.DocumentId, title = x.Title, score = x.Score, blendScore = x.BlendScore, rerankScore = x.RerankScore, rerankLogit = x.RerankLogit, fusedScore = x.FusedScore,
            denseScore = x.DenseScore, denseRank = x.DenseRank, bm25Score = x.Bm25Score, bm25Rank = x.Bm25Rank,
            metadata = x.Metadata.Count > 0 ? x.Metadata : null, passage = x.Passage,
        }),
    };

    private static void Render(SearchResponse r, IAnsiConsole console)
    {
        // Only the score columns some result has (a bm25 search has no dense or fused column), so the text gets the room.
        (string Header, Func<SearchResult, string?> Cell)[] scores =
        [
            ("blend", x => x.BlendScore?.ToString("F4")),
            ("rerank", x => x.RerankScore?.ToString("F3")),
            ("fused", x => x.FusedScore?.ToString("F4")),
            ("dense (rank)", x => x.DenseScore is { } d ? $"{d:F3} ({x.DenseRank})" : null),
            ("bm25 (rank)", x => x.Bm25Score is { } b ? $"{b:F2} ({x.Bm25Rank})" : null),
        ];
        scores = scores.Where(c => r.Results.Any(x => c.Cell(x) is not null)).ToArray();
        var table = new Table().Border(TableBorder.Rounded).Title($"[bold]{Markup.Escape(r.Query)}[/]");
        table.AddColumns(["#", "id", "title / passage", .. scores.Select(c => c.Header)]);
        foreach (SearchResult x in r.Results)
        {
            string snippet = (x.Title.Length > 0 ? x.Title : x.Passage).ReplaceLineEndings(" ");
            if (snippet.Length > 90) snippet = snippet[..87] + "...";
            table.AddRow([x.Rank.ToString(), Markup.Escape(x.DocumentId), Markup.Escape(snippet), .. scores.Select(c => c.Cell(x) ?? "")]);
        }
        console.Write(table);
        StageTimings t = r.Timings;
        console.MarkupLine($"[grey]embed {t.Embed.TotalMilliseconds:F1} ms · retrieve {t.Retrieve.TotalMilliseconds:F1} ms · fuse {t.Fuse.TotalMilliseconds:F1} ms · rerank {t.Rerank.TotalMilliseconds:F1} ms · total {t.Total.TotalMilliseconds:F1} ms[/]");
    }
}
