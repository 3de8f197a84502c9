using System.CommandLine;
using Funnel.Index;
using Funnel.Inference;
using Funnel.Inference.Packaged;
using Funnel.Retrieval;

namespace Funnel.Cli.Commands;

/// <summary><c>funnel index</c>: create or update a collection from a JSONL corpus or a BEIR dataset.</summary>
internal static class IndexCommand
{
    public static Command Create()
    {
        Option<string> collection = CollectionCommandLine.CollectionOption();
        var input = new Option<string>("--input", "-i")
        {
            Description = "Documents: a JSONL file ({\"id\"|\"_id\", \"title\"?, \"text\", \"metadata\"?} per line), a BEIR folder or a BEIR .zip.",
            Required = true,
        };
        Option<string?> biEncoder = CollectionCommandLine.BiEncoderOption(
            $"Bi-encoder: model folder, packaged id or Hub id (default: the collection's; for a new collection {PackagedModels.DefaultBiEncoder.Id}, packaged).");
        Option<int> batchSize = CollectionCommandLine.BatchSizeOption();
        var chunkSize = new Option<int?>("--chunk-size") { Description = "New collections: wordpieces per chunk (default: the bi-encoder's window − 2)." };
        var chunkOverlap = new Option<int?>("--chunk-overlap") { Description = "New collections: wordpieces shared by consecutive chunks (default: an eighth of a chunk, at most 32)." };
        var index = new Option<VectorIndexKind>("--index") { Description = "New collections: vector index kind.", DefaultValueFactory = _ => VectorIndexKind.Hnsw };
        var hnswM = new Option<int>("--hnsw-m") { Description = "New HNSW collections: links per node (2M on layer 0). 32 or more keeps recall high past ~1M chunks.", DefaultValueFactory = _ => new HnswOptions().M };
        var efConstruction = new Option<int>("--ef-construction") { Description = "New HNSW collections: candidate list size while linking.", DefaultValueFactory = _ => new HnswOptions().EfConstruction };
        var efSearch = new Option<int>("--ef-search") { Description = "New HNSW collections: candidate list size of searches (raised to the number of candidates asked for).", DefaultValueFactory = _ => new HnswOptions().EfSearch };
        var quantization = new Option<VectorQuantization>("--quantization") { Description = "New HNSW collections: vector storage; int8 searches on 1-byte codes and rescores with the kept floats.", DefaultValueFactory = _ => new HnswOptions().Quantization };

        Option<string?> precision = CollectionCommandLine.PrecisionOption();
        var command = new Command("index", "Add or update documents of a collection (creating it if needed). Ctrl-C stops at a batch boundary; run again to finish.")
        {
            collection, input, biEncoder, batchSize, chunkSize, chunkOverlap, index, hnswM, efConstruction, efSearch, quantization, precision,
        };
        command.SetAction((parse, ct) => CliAction.RunAsync(parse, async output =>
        {
            string folder = parse.GetValue(collection)!;
            string corpus = parse.GetValue(input)!;
            if (!File.Exists(corpus) && !Directory.Exists(corpus))
                throw new FileNotFoundException($"--input '{corpus}' does not exist (expected a .jsonl file, a BEIR folder or a BEIR .zip)");
            var options = new IndexingOptions { BatchSize = parse.GetValue(batchSize) };
            if (options.BatchSize < 1) throw new UsageException($"--batch-size must be at least 1 (got {options.BatchSize})");
            bool exists = File.Exists(Path.Combine(folder, CollectionManifest.FileName));
            using SentenceEncoder encoder = await CollectionCommandLine.LoadBiEncoderAsync(parse, parse.GetValue(biEncoder), exists ? CollectionManifest.Read(folder) : null, ct,
                parse.GetValue(precision));
            ChunkingOptions chunking = Collection.DefaultChunking(encoder.MaxDocumentTokens);
            if (parse.GetValue(chunkSize) is int size) chunking = new ChunkingOptions { MaxTokens = size, OverlapTokens = Math.Min(32, size / 8) };
            if (parse.GetValue(chunkOverlap) is int overlap) chunking = chunking with { OverlapTokens = overlap };
            VectorIndexSettings vectorIndex = IndexSettings(parse, index, hnswM, efConstruction, efSearch, quantization);
            bool folderExisted = Directory.Exists(folder);
            Collection target = exists ? Collection.Open(folder) : Collection.Create(folder, encoder, new CollectionOptions { Chunking = chunking, VectorIndex = vectorIndex });
            try
            {
                if (target.Recovery.ReplayedBatches > 0 || target.Recovery.TornBytes > 0)
                    parse.InvocationConfiguration.Error.WriteLine($"recovered {target.Recovery.ReplayedBatches} logged batches; dropped {target.Recovery.TornBytes} bytes of an interrupted batch");
                IndexingProgress last = default;
                try
                {
                    last = await CollectionCommandLine.WithProgressAsync(parse.InvocationConfiguration.Error, "indexing", null, progress =>
                        CollectionIndexer.IndexAsync(target, encoder, CorpusReader.ReadAsync(corpus, ct), options,
                            new Relay(progress, p => last = p), ct));
                }
                catch (OperationCanceledException)
                {
                    parse.InvocationConfiguration.Error.WriteLine($"stopped: {CollectionCommandLine.Describe(last)}; the collection is consistent, run the same command again to finish");
                    return CliAction.Cancelled;
                }
                output.WriteLine($"{target.Folder}: {CollectionCommandLine.Describe(last)}; collection holds {target.DocumentCount:N0} documents, {target.ChunkCount:N0} chunks");
                return 0;
            }
            catch when (!exists && target.DocumentCount == 0)
            {
                // A run that created the collection and failed before storing anything (a bad input file) leaves nothing behind.
                target.Dispose();
                RemoveEmptyCollection(folder, folderExisted);
                throw;
            }
            finally
            {
                target.Dispose();
            }
        }));
        return command;
    }

    /// <summary>Deletes what <see cref="Collection.Create(string, SentenceEncoder, CollectionOptions?)"/> wrote, and the folder if it made it.</summary>
    private static void RemoveEmptyCollection(string folder, bool folderExisted)
    {
        if (!folderExisted)
        {
            Directory.Delete(folder, recursive: true);
            return;
        }
        File.Delete(Path.Combine(folder, CollectionManifest.FileName)); // first: without it the rest is an interrupted create
        foreach (string entry in Directory.EnumerateFileSystemEntries(folder))
            if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
            else File.Delete(entry);
    }

    private static VectorIndexSettings IndexSettings(ParseResult parse, Option<VectorIndexKind> index, Option<int> m, Option<int> efConstruction,
        Option<int> efSearch, Option<VectorQuantization> quantization)
    {
        static int Checked(ParseResult parse, Option<int> option, int min, int max)
        {
            int value = parse.GetValue(option);
            return value >= min && value <= max ? value : throw new ArgumentException($"{option.Name} must be between {min} and {max} (got {value})");
        }
        return new VectorIndexSettings
        {
            Kind = parse.GetValue(index),
            Hnsw = new HnswOptions
            {
                M = Checked(parse, m, HnswOptions.MinM, HnswOptions.MaxM),
                EfConstruction = Checked(parse, efConstruction, 1, 100_000),
                EfSearch = Checked(parse, efSearch, 1, 100_000),
                Quantization = parse.GetValue(quantization),
            },
        };
    }

    /// <summary>Remembers the last report (to say where an interrupted ingest stopped) and passes it on.</summary>
    private sealed class Relay(IProgress<IndexingProgress> inner, Action<IndexingProgress> remember) : IProgress<IndexingProgress>
    {
        public void Report(IndexingProgress value)
        {
            remember(value);
            inner.Report(value);
        }
    }
}
