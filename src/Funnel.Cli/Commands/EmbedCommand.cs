using System.Buffers;
using System.CommandLine;
using System.Globalization;
using Funnel.Inference;

namespace Funnel.Cli.Commands;

/// <summary><c>funnel embed</c>: one JSON array of floats per input text, one per line, in input order.</summary>
internal static class EmbedCommand
{
    /// <summary>Texts encoded per call, so output streams and memory stays bounded on large inputs.</summary>
    private const int Chunk = 256;

    public static Command Create()
    {
        Option<string> model = ModelOption.BiEncoder("Bi-encoder: a model folder (sentence-transformers layout), a packaged model's id or a Hub id");
        var input = new Option<string?>("--input", "-i") { Description = "Read texts from FILE (JSON Lines with \"text\", or plain lines); - for stdin" };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per forward pass", DefaultValueFactory = _ => 32 };
        var threads = new Option<int>("--threads") { Description = "Threads to use", DefaultValueFactory = _ => Environment.ProcessorCount };
        var maxLength = new Option<int?>("--max-length") { Description = "Truncate to this many tokens instead of the model's max_seq_length" };
        var prompt = new Option<string?>("--prompt") { Description = "Prepend this named prompt of config_sentence_transformers.json (e.g. query); default: the model's default prompt" };
        var inputType = new Option<string?>("--input-type")
        {
            Description = "Embed the texts as search queries or as documents, with the prompt the model gives that role (sentence-transformers' encode_query / encode_document)",
        };
        inputType.AcceptOnlyFromAmong("query", "document");
        Option<string?> precision = ModelOption.Precision();
        var texts = new Argument<string[]>("text") { Description = "Texts to embed", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("embed", "Embed texts with a bi-encoder; prints one JSON array per text, one per line.")
        {
            model, input, prompt, inputType, batch, threads, maxLength, precision, texts,
        };
        command.SetAction((parse, ct) => CliAction.RunAsync(parse, async output =>
        {
            var options = new EncoderOptions
            {
                BatchSize = parse.GetValue(batch), MaxThreads = parse.GetValue(threads), MaxSequenceLength = parse.GetValue(maxLength),
                Precision = ModelOption.ParsePrecision(parse.GetValue(precision)) ?? InferencePrecision.Fp32,
            };
            if (parse.GetValue(prompt) is not null && parse.GetValue(inputType) is not null)
                throw new UsageException("give --prompt or --input-type, not both: --input-type picks the model's prompt for that role");
            IEnumerable<string> source = InputTexts.Read(parse.GetValue(input), parse.GetValue(texts) ?? [], Console.In);
            using SentenceEncoder encoder = SentenceEncoder.Load(await ModelOption.ResolveAsync(parse, parse.GetValue(model)!, "bi-encoder", ct), options);
            string? promptName = parse.GetValue(inputType) switch
            {
                "query" => encoder.QueryPromptName,
                "document" => encoder.DocumentPromptName,
                _ => parse.GetValue(prompt) ?? encoder.DefaultPromptName,
            };
            encoder.PromptText(promptName); // an unknown --prompt fails here, before any input is read
            // One write per chunk: the console flushes on every write, and a line per vector made thousands of them.
            foreach (string[] chunk in source.Chunk(Chunk))
                output.Write(Json.Lines(encoder.Encode(chunk, promptName, ct), options.MaxThreads));
            return 0;
        }));
        return command;
    }
}

/// <summary>Compact JSON for float output: shortest round-trip numbers.</summary>
internal static class Json
{
    /// <summary>The longest a number takes, its comma included: "-1.1754944E-38," is 15 characters.</summary>
    private const int MaxNumberChars = 16;

    public static string Array(ReadOnlySpan<float> values) => Format(values, "");

    /// <summary>One array per row, each ending in a newline, formatted on up to <paramref name="maxThreads"/> threads.</summary>
    public static string Lines(IReadOnlyList<float[]> rows, int maxThreads)
    {
        var lines = new string[rows.Count];
        Parallel.For(0, rows.Count, new ParallelOptions { MaxDegreeOfParallelism = maxThreads }, r => lines[r] = Format(rows[r], Environment.NewLine));
        return string.Concat(lines);
    }

    public static string Number(float v) => float.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "null";

    /// <summary>Formats into one pooled buffer: a string per number and a growing builder cost more than the digits.</summary>
    private static string Format(ReadOnlySpan<float> values, string end)
    {
        char[] buffer = ArrayPool<char>.Shared.Rent(2 + values.Length * MaxNumberChars + end.Length);
        try
        {
            int at = 0;
            buffer[at++] = '[';
            for (int i = 0; i < values.Length; i++)
            {
                if (i > 0) buffer[at++] = ',';
                if (!float.IsFinite(values[i]))
                {
                    "null".CopyTo(buffer.AsSpan(at));
                    at += 4;
                    continue;
                }
                if (!values[i].TryFormat(buffer.AsSpan(at), out int written, "R", CultureInfo.InvariantCulture))
                    throw new InvalidOperationException($"{values[i]} took more than {MaxNumberChars} characters");
                at += written;
            }
            buffer[at++] = ']';
            end.CopyTo(buffer.AsSpan(at));
            return new string(buffer, 0, at + end.Length);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }
}
