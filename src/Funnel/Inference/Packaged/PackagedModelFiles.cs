using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Funnel.Inference.Packaged;

/// <summary>
/// The configuration files of a packaged model's folder, as sentence-transformers and transformers lay them out, so that the
/// folder loads like any downloaded one (in Funnel, and in Python). The packages carry only weights and a vocabulary; the rest
/// is written from the model contract. Both packaged models are BERT MiniLM-L6-H384 with the bert-base-uncased WordPiece
/// vocabulary; the values below are those of all-MiniLM-L6-v2's own files on the Hub.
/// </summary>
internal static class PackagedModelFiles
{
    public const string Onnx = "model.onnx";
    public const string Vocab = "vocab.txt";

    /// <summary>sha256 of bert-base-uncased's vocab.txt (LF line ends), which both packages carry with CRLF ones.</summary>
    public const string VocabSha256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3";

    private const int Hidden = 384;

    /// <summary>Every file but the weights and the vocabulary, by path inside the folder.</summary>
    public static IReadOnlyList<(string Path, byte[] Content)> Configuration(PackagedModel model) =>
    [
        ("config.json", Json(BertConfig)),
        ("tokenizer_config.json", Json(TokenizerConfig)),
        ("special_tokens_map.json", Json(SpecialTokensMap)),
        ("modules.json", Json(Modules)),
        ("1_Pooling/config.json", Json(PoolingConfig(model.Pooling))),
        ("sentence_bert_config.json", Json(new JsonObject { ["max_seq_length"] = model.MaxSeqLength, ["do_lower_case"] = false })),
        ("config_sentence_transformers.json", Json(new JsonObject
        {
            ["prompts"] = new JsonObject(model.Prompts.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
            ["default_prompt_name"] = null,
            ["similarity_fn_name"] = "cosine",
        })),
    ];

    /// <summary>The package's CRLF vocabulary with LF line ends, as transformers writes vocab.txt.</summary>
    public static byte[] VocabWithLfLineEnds(byte[] crlf) =>
        Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(crlf).Replace("\r\n", "\n", StringComparison.Ordinal));

    private static JsonObject BertConfig => new()
    {
        ["architectures"] = new JsonArray("BertModel"),
        ["attention_probs_dropout_prob"] = 0.1,
        ["classifier_dropout"] = null,
        ["gradient_checkpointing"] = false,
        ["hidden_act"] = "gelu", // exact (erf) GELU
        ["hidden_dropout_prob"] = 0.1,
        ["hidden_size"] = Hidden,
        ["initializer_range"] = 0.02,
        ["intermediate_size"] = 1536,
        ["layer_norm_eps"] = 1e-12,
        ["max_position_embeddings"] = 512,
        ["model_type"] = "bert",
        ["num_attention_heads"] = 12,
        ["num_hidden_layers"] = 6,
        ["pad_token_id"] = 0,
        ["position_embedding_type"] = "absolute",
        ["torch_dtype"] = "float32",
        ["type_vocab_size"] = 2,
        ["use_cache"] = true,
        ["vocab_size"] = 30522,
    };

    private static readonly (int Id, string Token)[] Specials = [(0, "[PAD]"), (100, "[UNK]"), (101, "[CLS]"), (102, "[SEP]"), (103, "[MASK]")];

    // bert-base-uncased: lower-case, accents stripped with lower-casing (strip_accents null), Chinese characters split.
    private static JsonObject TokenizerConfig => new()
    {
        ["added_tokens_decoder"] = new JsonObject(Specials.Select(s => KeyValuePair.Create(s.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            (JsonNode?)new JsonObject
            {
                ["content"] = s.Token, ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = true,
            }))),
        ["clean_up_tokenization_spaces"] = false,
        ["cls_token"] = "[CLS]",
        ["do_basic_tokenize"] = true,
        ["do_lower_case"] = true,
        ["mask_token"] = "[MASK]",
        ["model_max_length"] = 512,
        ["never_split"] = null,
        ["pad_token"] = "[PAD]",
        ["sep_token"] = "[SEP]",
        ["strip_accents"] = null,
        ["tokenize_chinese_chars"] = true,
        ["tokenizer_class"] = "BertTokenizer",
        ["unk_token"] = "[UNK]",
    };

    private static JsonObject SpecialTokensMap => new(
        new[] { ("cls_token", "[CLS]"), ("mask_token", "[MASK]"), ("pad_token", "[PAD]"), ("sep_token", "[SEP]"), ("unk_token", "[UNK]") }
            .Select(s => KeyValuePair.Create(s.Item1, (JsonNode?)new JsonObject
            {
                ["content"] = s.Item2, ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false,
            })));

    private static JsonArray Modules => new(
        Module(0, "", "Transformer"),
        Module(1, "1_Pooling", "Pooling"),
        Module(2, "2_Normalize", "Normalize"));

    private static JsonObject Module(int index, string path, string type) => new()
    {
        ["idx"] = index, ["name"] = index.ToString(System.Globalization.CultureInfo.InvariantCulture), ["path"] = path,
        ["type"] = "sentence_transformers.models." + type,
    };

    private static JsonObject PoolingConfig(PoolingMode pooling) => new()
    {
        ["word_embedding_dimension"] = Hidden,
        ["pooling_mode_cls_token"] = pooling == PoolingMode.Cls,
        ["pooling_mode_mean_tokens"] = pooling == PoolingMode.Mean,
        ["pooling_mode_max_tokens"] = pooling == PoolingMode.Max,
        ["pooling_mode_mean_sqrt_len_tokens"] = pooling == PoolingMode.MeanSqrtLen,
        ["pooling_mode_weightedmean_tokens"] = false,
        ["pooling_mode_lasttoken"] = false,
        ["include_prompt"] = true,
    };

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private static byte[] Json(JsonNode node) => Encoding.UTF8.GetBytes(node.ToJsonString(Indented) + "\n");
}
