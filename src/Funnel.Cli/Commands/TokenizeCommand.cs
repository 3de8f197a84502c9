using System.CommandLine;
using StringBuilder = System.Text.StringBuilder;
using System.Text.Encodings.Web;
using System.Text.Json;
using Funnel.Tokenization;

namespace Funnel.Cli.Commands;

/// <summary><c>funnel tokenize --model M TEXT [--pair TEXT] [--max-length N]</c>: the model's input for a text, as JSON.</summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        Option<string> model = ModelOption.Create();
        var text = new Argument<string>("text") { Description = "The text to tokenize (the first sequence of a pair)." };
        var pair = new Option<string?>("--pair") { Description = "A second text, encoded as [CLS] TEXT [SEP] PAIR [SEP] (cross-encoder input)." };
        var maxLength = new Option<int?>("--max-length")
        {
            Description = "Truncate to this many tokens, special tokens included (default: the model's model_max_length, else 512).",
        };
        var command = new Command("tokenize", "Print a text's input_ids, token_type_ids, attention_mask, tokens and character offsets as JSON.")
        {
            model, text, pair, maxLength,
        };
        command.SetAction((parse, ct) => CliAction.RunAsync(parse, async stdout =>
        {
            var tokenizer = BertTokenizer.FromFolder(await ModelOption.ResolveAsync(parse, parse.GetRequiredValue(model), "tokenizer", ct));
            string first = parse.GetRequiredValue(text);
            string? second = parse.GetValue(pair);
            int length = parse.GetValue(maxLength) ?? tokenizer.ModelMaxLength ?? 512;
            int specials = tokenizer.SpecialTokenCount(pair: second is not null);
            if (length < specials)
                throw new ArgumentException($"--max-length {length} leaves no room: the {(second is null ? "single" : "pair")} template alone adds {specials} special tokens");
            Encoding encoding = second is null ? tokenizer.Encode(first, length) : tokenizer.EncodePair(first, second, length);
            await stdout.WriteAsync(ToJson(tokenizer, encoding));
            return 0;
        }));
        return command;
    }

    // Tokens are shown as they are (e.g. "東"), not as \u escapes; the output is for reading.
    private static readonly JsonSerializerOptions Readable = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>One field per line, each array on one line, so the output reads well and still parses as JSON.</summary>
    internal static string ToJson(BertTokenizer tokenizer, Encoding encoding)
    {
        var json = new StringBuilder();
        json.Append("{\n");
        json.Append("  \"input_ids\": ").Append(JsonSerializer.Serialize(encoding.InputIds)).Append(",\n");
        json.Append("  \"token_type_ids\": ").Append(JsonSerializer.Serialize(encoding.TokenTypeIds)).Append(",\n");
        json.Append("  \"attention_mask\": ").Append(JsonSerializer.Serialize(encoding.AttentionMask)).Append(",\n");
        json.Append("  \"tokens\": ").Append(JsonSerializer.Serialize(encoding.InputIds.Select(tokenizer.IdToToken), Readable)).Append(",\n");
        json.Append("  \"offsets\": ").Append(JsonSerializer.Serialize(encoding.Offsets.Select(o => new[] { o.Start, o.End }))).Append('\n');
        json.Append("}\n");
        return json.ToString();
    }
}
