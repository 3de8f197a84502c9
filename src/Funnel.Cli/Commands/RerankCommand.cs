using System.CommandLine;
using Funnel.Inference;

namespace Funnel.Cli.Commands;

/// <summary><c>funnel rerank</c>: cross-encoder scores of documents against a query, or of a file of pairs.</summary>
internal static class RerankCommand
{
    public static Command Create()
    {
        Option<string?> model = ModelOption.CrossEncoder("Cross-encoder (BertForSequenceClassification): a model folder or a Hub id");
        var query = new Option<string?>("--query", "-q") { Description = "The query (or give --pairs)" };
        var pairs = new Option<string?>("--pairs") { Description = "Score the pairs of a JSON Lines FILE ({\"sentence1\", \"sentence2\"} or {\"query\", \"document\"} per line; - for stdin); prints one score per line, in order" };
        var input = new Option<string?>("--input", "-i") { Description = "Read documents from FILE (JSON Lines with \"text\", or plain lines); - for stdin" };
        var top = new Option<int?>("--top") { Description = "Print the K best as [{\"index\", \"score\"}], best first, instead of all scores in input order" };
        var batch = new Option<int>("--batch-size") { Description = "Pairs per forward pass", DefaultValueFactory = _ => 32 };
        var threads = new Option<int>("--threads") { Description = "Threads to use", DefaultValueFactory = _ => Environment.ProcessorCount };
        var maxLength = new Option<int?>("--max-length") { Description = "Truncate pairs (longest first) to this many tokens" };
        var sigmoid = new Option<bool>("--sigmoid") { Description = "Apply a sigmoid to the logits whatever the model configures" };
        Option<string?> precision = ModelOption.Precision();
        var docs = new Argument<string[]>("document") { Description = "Documents to score", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("rerank", "Score documents against a query with a cross-encoder; prints a JSON array.")
        {
            model, query, pairs, input, top, batch, threads, maxLength, sigmoid, precision, docs,
        };
        command.SetAction((parse, ct) => CliAction.RunAsync(parse, async output =>
        {
            if (parse.GetValue(top) is < 0) throw new UsageException("--top must be at least 0");
            string? pairFile = parse.GetValue(pairs);
            if ((pairFile == null) == (parse.GetValue(query) == null)) throw new UsageException("give either --query (with documents) or --pairs FILE");
            if (pairFile != null && (parse.GetValue(top) != null || parse.GetValue(input) != null || parse.GetValue(docs) is { Length: > 0 }))
                throw new UsageException("--pairs scores the file's pairs: --top, --input and document arguments go with --query");
            var options = new EncoderOptions
            {
                BatchSize = parse.GetValue(batch), MaxThreads = parse.GetValue(threads), MaxSequenceLength = parse.GetValue(maxLength),
                Activation = parse.GetValue(sigmoid) ? ScoreActivation.Sigmoid : null,
                Precision = ModelOption.ParsePrecision(parse.GetValue(precision)) ?? InferencePrecision.Fp32,
            };
            List<(string, string)>? scored = pairFile == null ? null : InputPairs.Read(pairFile, Console.In).ToList();
            List<string> documents = scored == null ? InputTexts.Read(parse.GetValue(input), parse.GetValue(docs) ?? [], Console.In).ToList() : [];
            string name = parse.GetValue(model) ?? throw new UsageException($"{ModelOption.NoPackagedCrossEncoder} with --model");
            using CrossEncoder encoder = CrossEncoder.Load(await ModelOption.ResolveAsync(parse, name, "cross-encoder", ct), options);
            if (scored != null)
            {
                foreach (float score in encoder.Score(scored, ct)) output.WriteLine(Json.Number(score));
            }
            else if (parse.GetValue(top) is int k)
            {
                var ranked = encoder.Rank(parse.GetValue(query)!, documents, k, ct);
                output.WriteLine("[" + string.Join(",", ranked.Select(r => $"{{\"index\":{r.Index},\"score\":{Json.Number(r.Score)}}}")) + "]");
            }
            else
            {
                output.WriteLine(Json.Array(encoder.Score(parse.GetValue(query)!, documents, ct)));
            }
            return 0;
        }));
        return command;
    }
}
