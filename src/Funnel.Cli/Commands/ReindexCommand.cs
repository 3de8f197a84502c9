using System.CommandLine;
using Funnel.Inference;
using Funnel.Retrieval;

namespace Funnel.Cli.Commands;

/// <summary><c>funnel reindex</c>: re-embed a collection with another bi-encoder, atomically.</summary>
internal static class ReindexCommand
{
    public static Command Create()
    {
        Option<string> collection = CollectionCommandLine.CollectionOption();
        Option<string?> biEncoder = CollectionCommandLine.BiEncoderOption("The new bi-encoder: model folder, packaged id or Hub id.");
        biEncoder.Required = true;
        Option<int> batchSize = CollectionCommandLine.BatchSizeOption();
        Option<string?> precision = ModelOption.Precision();
        var command = new Command("reindex", "Re-chunk and re-embed every document with another bi-encoder; searches see the old vectors until it commits.")
        {
            collection, biEncoder, batchSize, precision,
        };
        command.SetAction((parse, ct) => CliAction.RunAsync(parse, async output =>
        {
            int batch = parse.GetValue(batchSize);
            if (batch < 1) throw new ArgumentException($"--batch-size must be at least 1 (got {batch})");
            using Collection target = Collection.Open(parse.GetValue(collection)!);
            using SentenceEncoder encoder = await CollectionCommandLine.LoadBiEncoderAsync(parse, parse.GetValue(biEncoder), null, ct, parse.GetValue(precision));
            try
            {
                IndexingProgress done = await CollectionCommandLine.WithProgressAsync(parse.InvocationConfiguration.Error, "re-embedding", target.DocumentCount, progress =>
                    Task.Run(() => CollectionIndexer.Reindex(target, encoder, batchSize: batch, progress: progress, ct: ct), ct));
                output.WriteLine($"{target.Folder}: re-embedded {CollectionCommandLine.Describe(done)} with {encoder.Fingerprint.Model}");
                return 0;
            }
            catch (OperationCanceledException)
            {
                parse.InvocationConfiguration.Error.WriteLine("stopped: the collection is unchanged (still on its previous bi-encoder)");
                return CliAction.Cancelled;
            }
        }));
        return command;
    }
}
