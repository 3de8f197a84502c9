using System.Text.Json;

namespace Funnel.Tokenization;

/// <summary>
/// Reads Hugging Face tokenizer files: <c>tokenizer.json</c>, or <c>vocab.txt</c> with
/// <c>tokenizer_config.json</c> and <c>special_tokens_map.json</c> (the "slow" BERT files, converted as
/// transformers' <c>BertConverter</c> does). Every error names the file and the field.
/// </summary>
internal static class TokenizerFiles
{
    public const string TokenizerJson = "tokenizer.json";
    public const string VocabTxt = "vocab.txt";
    public const string TokenizerConfigJson = "tokenizer_config.json";
    public const string SpecialTokensMapJson = "special_tokens_map.json";

    public static BertTokenizer ReadFolder(string modelDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        if (!Directory.Exists(modelDir))
            throw new DirectoryNotFoundException($"model folder '{modelDir}' does not exist");
        string configPath = Path.Combine(modelDir, TokenizerConfigJson);
        using JsonDocument? config = File.Exists(configPath) ? Parse(configPath) : null;
        int? modelMaxLength = config is null ? null : ModelMaxLength(config.RootElement);

        string tokenizerJson = Path.Combine(modelDir, TokenizerJson);
        if (File.Exists(tokenizerJson)) return ReadTokenizerJson(tokenizerJson, modelMaxLength);

        string vocabPath = Path.Combine(modelDir, VocabTxt);
        if (!File.Exists(vocabPath))
            throw new FileNotFoundException($"model folder '{modelDir}' has neither {TokenizerJson} nor {VocabTxt}", vocabPath);
        string mapPath = Path.Combine(modelDir, SpecialTokensMapJson);
        using JsonDocument? map = File.Exists(mapPath) ? Parse(mapPath) : null;
        return NamingFile(vocabPath, () => ReadVocab(vocabPath, config?.RootElement, configPath, map?.RootElement, mapPath, modelMaxLength));
    }

    public static BertTokenizer ReadTokenizerJson(string path, int? modelMaxLength) =>
        NamingFile(path, () => ReadTokenizerJsonCore(path, modelMaxLength));

    private static BertTokenizer ReadTokenizerJsonCore(string path, int? modelMaxLength)
    {
        using JsonDocument document = Parse(path);
        JsonElement root = document.RootElement;
        var ctx = new Context(path);

        JsonElement model = ctx.Required(root, "model", JsonValueKind.Object);
        string? modelType = ctx.OptionalString(model, "type", "model.type");
        if (modelType is not null && modelType != "WordPiece")
            throw ctx.Error("model.type", $"'{modelType}' is not supported (only WordPiece)");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in ctx.Required(model, "vocab", JsonValueKind.Object, "model.vocab").EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                throw ctx.Error($"model.vocab[\"{entry.Name}\"]", "expected a non-negative integer id");
            vocab[entry.Name] = id;
        }
        var wordPiece = new WordPiece(
            vocab,
            ctx.OptionalString(model, "unk_token", "model.unk_token") ?? "[UNK]",
            ctx.OptionalString(model, "continuing_subword_prefix", "model.continuing_subword_prefix") ?? "##",
            ctx.OptionalInt(model, "max_input_chars_per_word", "model.max_input_chars_per_word") ?? 100);

        BertNormalizer normalizer = ReadNormalizer(root, ctx);
        if (root.TryGetProperty("pre_tokenizer", out JsonElement pre) && pre.ValueKind != JsonValueKind.Null)
        {
            string? type = ctx.OptionalString(pre, "type", "pre_tokenizer.type");
            if (type != "BertPreTokenizer")
                throw ctx.Error("pre_tokenizer.type", $"'{type}' is not supported (only BertPreTokenizer)");
        }
        else
        {
            throw ctx.Error("pre_tokenizer", "missing; a BERT tokenizer needs BertPreTokenizer");
        }

        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out JsonElement addedTokens) && addedTokens.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (JsonElement token in addedTokens.EnumerateArray())
            {
                string field = $"added_tokens[{i++}]";
                string content = ctx.OptionalString(token, "content", field + ".content") ?? throw ctx.Error(field + ".content", "missing");
                int id = ctx.OptionalInt(token, "id", field + ".id") ?? throw ctx.Error(field + ".id", "missing");
                if (ctx.OptionalBool(token, "single_word", field + ".single_word") == true)
                    throw ctx.Error(field + ".single_word", $"added token '{content}' requires single_word matching, which is not supported");
                added.Add(new AddedToken(id, content,
                    ctx.OptionalBool(token, "special", field + ".special") ?? false,
                    ctx.OptionalBool(token, "lstrip", field + ".lstrip") ?? false,
                    ctx.OptionalBool(token, "rstrip", field + ".rstrip") ?? false,
                    // HF's AddedToken default: special tokens are matched raw, others normalized.
                    ctx.OptionalBool(token, "normalized", field + ".normalized") ?? !(ctx.OptionalBool(token, "special", field + ".special") ?? false)));
            }
        }

        var specials = new SpecialTokens(Unk: wordPiece.UnkToken);
        PostProcessor post = ReadPostProcessor(root, ctx, vocab, added);
        return new BertTokenizer(vocab, wordPiece, normalizer, post, added, specials,
            ReadTruncation(root, ctx), ReadPadding(root, ctx), modelMaxLength);
    }

    private static BertTokenizer ReadVocab(string vocabPath, JsonElement? config, string configPath, JsonElement? map, string mapPath, int? modelMaxLength)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        int id = 0;
        foreach (string line in File.ReadLines(vocabPath))
        {
            // HF's load_vocab: one token per line, trailing newline stripped; a repeated token keeps its last id.
            vocab[line.TrimEnd('\r', '\n')] = id++;
        }
        if (vocab.Count == 0) throw new InvalidDataException("the vocabulary is empty");

        var configCtx = new Context(configPath);
        var mapCtx = new Context(mapPath);
        string Special(string key, string fallback) =>
            (map is { } m ? SpecialTokenString(m, key, mapCtx) : null)
            ?? (config is { } c ? SpecialTokenString(c, key, configCtx) : null)
            ?? fallback;
        var specials = new SpecialTokens(Special("cls_token", "[CLS]"), Special("sep_token", "[SEP]"), Special("pad_token", "[PAD]"),
            Special("unk_token", "[UNK]"), Special("mask_token", "[MASK]"));

        bool lowercase = true, chinese = true;
        bool? strip = null;
        if (config is { } cfg)
        {
            lowercase = configCtx.OptionalBool(cfg, "do_lower_case", "do_lower_case") ?? true;
            chinese = configCtx.OptionalBool(cfg, "tokenize_chinese_chars", "tokenize_chinese_chars") ?? true;
            strip = configCtx.OptionalBool(cfg, "strip_accents", "strip_accents");
        }

        var wordPiece = new WordPiece(vocab, specials.Unk, "##", 100);
        int RequireId(string token, string role) => vocab.TryGetValue(token, out int i)
            ? i
            : throw new InvalidDataException($"the {role} token '{token}' is not in the vocabulary");
        var added = new[] { specials.Pad, specials.Unk, specials.Cls, specials.Sep, specials.Mask }
            .Where(vocab.ContainsKey).Distinct()
            .Select(t => new AddedToken(vocab[t], t))
            .ToList();
        var post = PostProcessor.Bert(RequireId(specials.Cls, "cls"), RequireId(specials.Sep, "sep"));
        return new BertTokenizer(vocab, wordPiece, new BertNormalizer(true, chinese, strip, lowercase), post, added, specials,
            truncation: null, padding: null, modelMaxLength);
    }

    private static BertNormalizer ReadNormalizer(JsonElement root, Context ctx)
    {
        if (!root.TryGetProperty("normalizer", out JsonElement n) || n.ValueKind == JsonValueKind.Null)
            return new BertNormalizer(false, false, false, false);
        string? type = ctx.OptionalString(n, "type", "normalizer.type");
        if (type != "BertNormalizer")
            throw ctx.Error("normalizer.type", $"'{type}' is not supported (only BertNormalizer)");
        return new BertNormalizer(
            ctx.OptionalBool(n, "clean_text", "normalizer.clean_text") ?? true,
            ctx.OptionalBool(n, "handle_chinese_chars", "normalizer.handle_chinese_chars") ?? true,
            ctx.OptionalBool(n, "strip_accents", "normalizer.strip_accents"),
            ctx.OptionalBool(n, "lowercase", "normalizer.lowercase") ?? true);
    }

    private static PostProcessor ReadPostProcessor(JsonElement root, Context ctx, Dictionary<string, int> vocab, List<AddedToken> added)
    {
        if (!root.TryGetProperty("post_processor", out JsonElement p) || p.ValueKind == JsonValueKind.Null)
            return new PostProcessor([new(null, 0, 0)], [new(null, 0, 0), new(null, 1, 1)]);
        string? type = ctx.OptionalString(p, "type", "post_processor.type");
        switch (type)
        {
            case "BertProcessing":
                return PostProcessor.Bert(TokenIdPair(p, "cls"), TokenIdPair(p, "sep"));
            case "TemplateProcessing":
                var specialIds = new Dictionary<string, int[]>(StringComparer.Ordinal);
                if (p.TryGetProperty("special_tokens", out JsonElement specials) && specials.ValueKind == JsonValueKind.Object)
                {
                    foreach (JsonProperty s in specials.EnumerateObject())
                    {
                        JsonElement ids = ctx.Required(s.Value, "ids", JsonValueKind.Array, $"post_processor.special_tokens.{s.Name}.ids");
                        specialIds[s.Name] = ids.EnumerateArray().Select(e => e.TryGetInt32(out int i) ? i
                            : throw ctx.Error($"post_processor.special_tokens.{s.Name}.ids", "expected integer ids")).ToArray();
                    }
                }
                return new PostProcessor(Template("single"), Template("pair"));
            default:
                throw ctx.Error("post_processor.type", $"'{type}' is not supported (only TemplateProcessing and BertProcessing)");

            List<PostProcessor.Piece> Template(string name)
            {
                var pieces = new List<PostProcessor.Piece>();
                int i = 0;
                foreach (JsonElement item in ctx.Required(p, name, JsonValueKind.Array, $"post_processor.{name}").EnumerateArray())
                {
                    string field = $"post_processor.{name}[{i++}]";
                    if (item.TryGetProperty("SpecialToken", out JsonElement special))
                    {
                        string id = ctx.OptionalString(special, "id", field + ".SpecialToken.id") ?? throw ctx.Error(field, "SpecialToken without id");
                        int[] ids = specialIds.TryGetValue(id, out int[]? known) ? known
                            : vocab.TryGetValue(id, out int v) ? [v]
                            : throw ctx.Error(field, $"special token '{id}' is neither in post_processor.special_tokens nor in the vocabulary");
                        pieces.Add(new(ids, 0, ctx.OptionalInt(special, "type_id", field + ".SpecialToken.type_id") ?? 0));
                    }
                    else if (item.TryGetProperty("Sequence", out JsonElement sequence))
                    {
                        string? id = ctx.OptionalString(sequence, "id", field + ".Sequence.id");
                        int which = id switch { "A" => 0, "B" => 1, _ => throw ctx.Error(field + ".Sequence.id", $"expected \"A\" or \"B\", found '{id}'") };
                        pieces.Add(new(null, which, ctx.OptionalInt(sequence, "type_id", field + ".Sequence.type_id") ?? 0));
                    }
                    else
                    {
                        throw ctx.Error(field, "expected a SpecialToken or a Sequence");
                    }
                }
                return pieces;
            }
        }

        int TokenIdPair(JsonElement processing, string key)
        {
            JsonElement pair = ctx.Required(processing, key, JsonValueKind.Array, $"post_processor.{key}");
            if (pair.GetArrayLength() != 2 || !pair[1].TryGetInt32(out int id))
                throw ctx.Error($"post_processor.{key}", "expected [token, id]");
            return id;
        }
    }

    private static TruncationOptions? ReadTruncation(JsonElement root, Context ctx)
    {
        if (!root.TryGetProperty("truncation", out JsonElement t) || t.ValueKind == JsonValueKind.Null) return null;
        int maxLength = ctx.OptionalInt(t, "max_length", "truncation.max_length") ?? throw ctx.Error("truncation.max_length", "missing");
        TruncationStrategy strategy = ctx.OptionalString(t, "strategy", "truncation.strategy") switch
        {
            null or "LongestFirst" => TruncationStrategy.LongestFirst,
            "OnlyFirst" => TruncationStrategy.OnlyFirst,
            "OnlySecond" => TruncationStrategy.OnlySecond,
            var other => throw ctx.Error("truncation.strategy", $"expected LongestFirst, OnlyFirst or OnlySecond, found '{other}'"),
        };
        return new TruncationOptions(maxLength, strategy, Side(ctx.OptionalString(t, "direction", "truncation.direction"), "truncation.direction", ctx));
    }

    private static PaddingOptions? ReadPadding(JsonElement root, Context ctx)
    {
        if (!root.TryGetProperty("padding", out JsonElement p) || p.ValueKind == JsonValueKind.Null) return null;
        int? fixedLength = null;
        if (p.TryGetProperty("strategy", out JsonElement strategy) && strategy.ValueKind == JsonValueKind.Object)
            fixedLength = ctx.OptionalInt(strategy, "Fixed", "padding.strategy.Fixed");
        else if (strategy.ValueKind == JsonValueKind.String && strategy.GetString() != "BatchLongest")
            throw ctx.Error("padding.strategy", $"expected \"BatchLongest\" or {{\"Fixed\": n}}, found '{strategy.GetString()}'");
        return new PaddingOptions(
            ctx.OptionalInt(p, "pad_id", "padding.pad_id") ?? 0,
            ctx.OptionalInt(p, "pad_type_id", "padding.pad_type_id") ?? 0,
            fixedLength,
            ctx.OptionalInt(p, "pad_to_multiple_of", "padding.pad_to_multiple_of"),
            Side(ctx.OptionalString(p, "direction", "padding.direction"), "padding.direction", ctx));
    }

    private static TruncationSide Side(string? direction, string field, Context ctx) => direction switch
    {
        null or "Right" => TruncationSide.Right,
        "Left" => TruncationSide.Left,
        _ => throw ctx.Error(field, $"expected Right or Left, found '{direction}'"),
    };

    private static int? ModelMaxLength(JsonElement config)
    {
        // Some configs say 1e30 for "no limit"; only an int-sized value is a real limit.
        if (config.TryGetProperty("model_max_length", out JsonElement v) && v.ValueKind == JsonValueKind.Number
            && v.TryGetDouble(out double d) && d is > 0 and < int.MaxValue)
            return (int)d;
        return null;
    }

    /// <summary>A special token given as a string or as {"content": ...}.</summary>
    private static string? SpecialTokenString(JsonElement root, string key, Context ctx)
    {
        if (!root.TryGetProperty(key, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        if (v.ValueKind == JsonValueKind.Object) return ctx.OptionalString(v, "content", key + ".content");
        throw ctx.Error(key, "expected a string or an object with \"content\"");
    }

    /// <summary>Prefixes the file to errors raised without it (e.g. a special token missing from the vocabulary).</summary>
    private static BertTokenizer NamingFile(string path, Func<BertTokenizer> read)
    {
        try
        {
            return read();
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    private static JsonDocument Parse(string path)
    {
        try
        {
            using FileStream stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e);
        }
    }

    /// <summary>Typed access to JSON fields with errors that name the file and the field.</summary>
    private sealed record Context(string Path)
    {
        public InvalidDataException Error(string field, string problem) => new($"{Path}: {field}: {problem}");

        public JsonElement Required(JsonElement obj, string name, JsonValueKind kind, string? field = null)
        {
            if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(name, out JsonElement v))
                throw Error(field ?? name, "missing");
            if (v.ValueKind != kind) throw Error(field ?? name, $"expected {kind}, found {v.ValueKind}");
            return v;
        }

        public string? OptionalString(JsonElement obj, string name, string field) =>
            Present(obj, name, field, JsonValueKind.String) is { } v ? v.GetString() : null;

        public int? OptionalInt(JsonElement obj, string name, string field) =>
            Present(obj, name, field, JsonValueKind.Number) is { } v
                ? v.TryGetInt32(out int i) ? i : throw Error(field, $"expected an integer, found {v.GetRawText()}")
                : null;

        public bool? OptionalBool(JsonElement obj, string name, string field)
        {
            if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Error(field, $"expected true or false, found {v.GetRawText()}"),
            };
        }

        /// <summary>The field's value when it is present and not null; an error when it has another kind.</summary>
        private JsonElement? Present(JsonElement obj, string name, string field, JsonValueKind kind)
        {
            if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind != kind) throw Error(field, $"expected {kind}, found {v.ValueKind}");
            return v;
        }
    }
}
