using Funnel.Inference.Hub;
using Funnel.Inference.Packaged;
using Funnel.Tokenization;
using Microsoft.Extensions.AI;

namespace Funnel.Inference;

/// <summary>
/// A sentence-transformers bi-encoder: BERT → pooling (mean / CLS / max, from
/// <c>1_Pooling/config.json</c>) → optional L2 normalisation (<c>modules.json</c>). Thread-safe:
/// concurrent calls share the weights and use their own buffers.
/// <para>It is an <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>: <see cref="GenerateAsync"/> gives what
/// <see cref="Encode(IReadOnlyList{string}, CancellationToken)"/>, <see cref="EncodeQueries"/> or <see cref="EncodeDocuments"/> give,
/// bit for bit, by the role in <see cref="SentenceEmbeddingOptions"/>.</para>
/// </summary>
public sealed class SentenceEncoder : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly BertModel _model;
    private readonly EncoderOptions _options;
    private bool _disposed;

    public BertTokenizer Tokenizer { get; }

    /// <summary>Length of the output vectors.</summary>
    public int Dimension { get; }

    /// <summary>Inputs are truncated to this many tokens, [CLS] and [SEP] included.</summary>
    public int MaxSequenceLength { get; }

    public PoolingMode Pooling { get; }

    public bool Normalize { get; }

    public ModelFingerprint Fingerprint { get; }

    /// <summary>The arithmetic of the linear layers (<see cref="EncoderOptions.Precision"/>); the fingerprint records it.</summary>
    public InferencePrecision Precision => _options.Precision;

    /// <summary>Named text prefixes from config_sentence_transformers.json (e.g. "query" → "query: ").</summary>
    public IReadOnlyDictionary<string, string> Prompts { get; }

    /// <summary>The prompt prepended when none is named, as sentence-transformers does; usually none.</summary>
    public string? DefaultPromptName { get; }

    /// <summary>
    /// The prompt <see cref="EncodeQueries"/> applies, by sentence-transformers v5's <c>encode_query</c>: the one named
    /// "query" when the model has it, else the default prompt (null: none).
    /// </summary>
    public string? QueryPromptName { get; }

    /// <summary>
    /// The prompt <see cref="EncodeDocuments"/> applies, by sentence-transformers v5's <c>encode_document</c>: the first of
    /// "document", "passage" and "corpus" the model has, else the default prompt (null: none).
    /// </summary>
    public string? DocumentPromptName { get; }

    /// <summary>Where the model folder came from (a packaged model, a Hub snapshot, another folder).</summary>
    public ModelSource Source => Fingerprint.Source!;

    /// <summary>Wordpieces of a document chunk that fit the window beside [CLS], [SEP] and the document prompt's own tokens.</summary>
    public int MaxDocumentTokens { get; }

    private SentenceEncoder(BertModel model, BertTokenizer tokenizer, SentenceTransformerConfig st, int maxSeq, EncoderOptions options, ModelFingerprint fingerprint)
    {
        _model = model;
        _options = options;
        Tokenizer = tokenizer;
        Pooling = st.Pooling;
        Normalize = st.Normalize;
        MaxSequenceLength = maxSeq;
        Dimension = Inference.Pooling.Dimension(st.Pooling, model.Config.HiddenSize);
        Prompts = st.Prompts;
        DefaultPromptName = st.DefaultPromptName;
        // sentence_transformers/SentenceTransformer.py (v5), encode_query and encode_document: with no prompt given, they
        // pick these names; encode() then falls back to default_prompt_name.
        QueryPromptName = Prompts.ContainsKey("query") ? "query" : DefaultPromptName;
        DocumentPromptName = new[] { "document", "passage", "corpus" }.FirstOrDefault(Prompts.ContainsKey) ?? DefaultPromptName;
        // Prompts end in a space or punctuation, where WordPiece splits anyway, so their tokens add up with the text's.
        MaxDocumentTokens = Math.Max(1, maxSeq - tokenizer.Encode(PromptText(DocumentPromptName), int.MaxValue).Length);
        Fingerprint = fingerprint with { QueryPrompt = NoneIfEmpty(PromptText(QueryPromptName)), DocumentPrompt = NoneIfEmpty(PromptText(DocumentPromptName)) };
    }

    /// <summary>Loads a model folder (config.json, model.safetensors or a sharded index, else model.onnx or onnx/model.onnx, tokenizer
    /// files, sentence-transformers module configs). Throws <see cref="ModelFormatException"/>
    /// naming the file and field when something is missing or unsupported.</summary>
    public static SentenceEncoder Load(string modelDir, EncoderOptions? options = null)
    {
        options ??= new EncoderOptions();
        options.Validate();
        if (!Directory.Exists(modelDir)) throw new ModelFormatException($"{modelDir}: model folder not found");
        BertConfig config = BertConfig.Load(modelDir);
        // A reranker's folder (a classification head, no sentence-transformers modules) would load as a bi-encoder of its
        // encoder alone and give vectors nobody trained: refuse it.
        if (config.Architecture == BertArchitecture.BertForSequenceClassification && !File.Exists(Path.Combine(modelDir, "modules.json")))
            throw new ModelFormatException(
                $"{modelDir}: is a cross-encoder (config.json architectures: BertForSequenceClassification, no modules.json); use it as the reranker " +
                "(funnel rerank --model, search --rerank, serve --cross-encoder), and give a bi-encoder (sentence-transformers folder) here");
        SentenceTransformerConfig st = SentenceTransformerConfig.Load(modelDir);
        BertTokenizer tokenizer = BertTokenizer.FromFolder(modelDir);
        int maxSeq = Math.Min(options.MaxSequenceLength ?? st.MaxSeqLength ?? tokenizer.ModelMaxLength ?? config.MaxPositionEmbeddings,
            config.MaxPositionEmbeddings);
        BertModel model = BertModel.Load(modelDir, config, withClassifier: false, options.Precision, out IReadOnlyList<string> weightPaths);
        var fingerprint = new ModelFingerprint(Path.GetFullPath(modelDir), ModelFingerprint.Sha256(weightPaths),
            Inference.Pooling.Dimension(st.Pooling, config.HiddenSize), Inference.Pooling.Describe(st.Pooling), st.Normalize, Source: ModelSource.Of(modelDir), Precision: options.Precision);
        return new SentenceEncoder(model, tokenizer, st, maxSeq, options, fingerprint);
    }

    /// <summary>
    /// Loads a model by a packaged model's id (e.g. <c>sentence-transformers/all-MiniLM-L6-v2</c>), a Hugging Face Hub id
    /// (<c>org/name[@revision]</c>, downloaded into the Hub cache once) or a folder, as <c>SentenceTransformer("id")</c> does.
    /// Hub settings come from the environment (HF_HOME, HF_HUB_OFFLINE, HF_TOKEN…), as in the CLI.
    /// </summary>
    public static Task<SentenceEncoder> FromPretrainedAsync(string idOrPath, CancellationToken ct = default) => FromPretrainedAsync(idOrPath, null, ct);

    /// <summary>As <see cref="FromPretrainedAsync(string, CancellationToken)"/>, with run-time <paramref name="options"/>.</summary>
    public static async Task<SentenceEncoder> FromPretrainedAsync(string idOrPath, EncoderOptions? options, CancellationToken ct = default) =>
        Load(await ResolvePretrainedAsync(idOrPath, ct), options);

    /// <summary>The folder of a model argument, resolved as the CLI resolves <c>--model</c> (without its progress bars).</summary>
    internal static async Task<string> ResolvePretrainedAsync(string idOrPath, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(idOrPath);
        using var resolver = new ModelResolver(HubOptions.FromEnvironment(), PackagedModelOptions.FromEnvironment());
        return resolver.TryResolveWithoutNetwork(idOrPath) ?? await resolver.ResolveAsync(idOrPath, progress: null, ct);
    }

    /// <summary>Embeds one text.</summary>
    public float[] Encode(string text) => Encode([text])[0];

    /// <summary>Embeds texts (after the default prompt, if the model names one); results are in
    /// input order and do not depend on how inputs are batched.</summary>
    public float[][] Encode(IReadOnlyList<string> texts, CancellationToken ct = default) => Encode(texts, DefaultPromptName, ct);

    /// <summary>Embeds texts after the prompt <paramref name="promptName"/> of <see cref="Prompts"/> (none when null).</summary>
    public float[][] Encode(IReadOnlyList<string> texts, string? promptName, CancellationToken ct = default) =>
        EncodeTexts(texts, promptName, Normalize, ct);

    /// <summary>Embeds one search query (after <see cref="QueryPromptName"/>'s prompt).</summary>
    public float[] EncodeQuery(string query) => EncodeQueries([query])[0];

    /// <summary>Embeds search queries after <see cref="QueryPromptName"/>'s prompt, as sentence-transformers' <c>encode_query</c>.</summary>
    public float[][] EncodeQueries(IReadOnlyList<string> queries, CancellationToken ct = default) => Encode(queries, QueryPromptName, ct);

    /// <summary>Embeds documents (or their chunks) after <see cref="DocumentPromptName"/>'s prompt, as sentence-transformers' <c>encode_document</c>.</summary>
    public float[][] EncodeDocuments(IReadOnlyList<string> documents, CancellationToken ct = default) => Encode(documents, DocumentPromptName, ct);

    /// <summary>The text prompt <paramref name="promptName"/> prepends ("" for null).</summary>
    /// <exception cref="ArgumentException">The model has no such prompt; the message lists those it has.</exception>
    public string PromptText(string? promptName)
    {
        if (promptName is null) return "";
        return Prompts.TryGetValue(promptName, out string? text) ? text
            : throw new ArgumentException($"this model has no prompt \"{promptName}\" (it has: {(Prompts.Count == 0 ? "none" : string.Join(", ", Prompts.Keys))})", nameof(promptName));
    }

    /// <summary>
    /// Embeds texts (after the default prompt) up to pooling, without the Normalize module even when the model has one:
    /// for callers that want the raw pooled vectors (TEI's <c>normalize: false</c>) or normalise them later with
    /// <see cref="NormalizeInPlace"/>, which gives exactly what <see cref="Encode(IReadOnlyList{string}, CancellationToken)"/> does.
    /// </summary>
    public float[][] EncodePooled(IReadOnlyList<string> texts, CancellationToken ct = default) => EncodePooled(texts, DefaultPromptName, ct);

    /// <summary>As <see cref="EncodePooled(IReadOnlyList{string}, CancellationToken)"/>, after the prompt <paramref name="promptName"/> (none when null).</summary>
    public float[][] EncodePooled(IReadOnlyList<string> texts, string? promptName, CancellationToken ct = default) => EncodeTexts(texts, promptName, normalize: false, ct);

    /// <summary>The Normalize module on its own (as torch's F.normalize for every real vector; see <see cref="Numerics.VectorMath.Normalize"/>): what <see cref="Encode(IReadOnlyList{string}, CancellationToken)"/>
    /// applies after pooling when <see cref="Normalize"/> is set.</summary>
    public static void NormalizeInPlace(Span<float> vector) => Numerics.VectorMath.Normalize(vector);

    private float[][] EncodeTexts(IReadOnlyList<string> texts, string? promptName, bool normalize, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(texts);
        for (int i = 0; i < texts.Count; i++)
            if (texts[i] is null) throw new ArgumentException($"texts[{i}] is null", nameof(texts));
        return EncodeTokens(Tokenize(texts, PromptText(promptName), truncate: true, ct), normalize, ct);
    }

    /// <summary>
    /// Tokenizes texts after <paramref name="prefix"/> (a prompt), once each: cut to the window, or when
    /// <paramref name="truncate"/> is false encoded whole and refused with <see cref="InputTooLongException"/> when too long.
    /// </summary>
    internal TokenSequence[] Tokenize(IReadOnlyList<string> texts, string prefix, bool truncate, CancellationToken ct)
    {
        // Encoding uncut costs nothing extra when the text fits (nothing is cut then), and gives the true length when it does not.
        int limit = truncate ? MaxSequenceLength : int.MaxValue;
        TokenSequence[] inputs = TokenBatches.Tokenize(texts.Count, i => Tokenizer.Encode(prefix + texts[i], limit), _options.MaxThreads, ct);
        if (!truncate)
            for (int i = 0; i < inputs.Length; i++)
                if (inputs[i].Ids.Length > MaxSequenceLength) throw new InputTooLongException(i, inputs[i].Ids.Length, MaxSequenceLength);
        return inputs;
    }

    /// <summary>The prompt name a role (or an explicit prompt name) selects.</summary>
    internal string? PromptNameFor(SentenceEmbeddingOptions options) => options.PromptName ?? options.Role switch
    {
        EmbeddingRole.Query => QueryPromptName,
        EmbeddingRole.Document => DocumentPromptName,
        _ => DefaultPromptName,
    };

    /// <summary>
    /// Embeds <paramref name="values"/> as <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>: the role, prompt, normalisation
    /// and truncation come from <see cref="SentenceEmbeddingOptions"/> in <paramref name="options"/>; the vectors are
    /// those <see cref="Encode(IReadOnlyList{string}, string?, CancellationToken)"/> returns for the same prompt. Usage counts the
    /// tokens the model read.
    /// </summary>
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(values);
        IReadOnlyList<string> texts = values as IReadOnlyList<string> ?? values.ToArray();
        for (int i = 0; i < texts.Count; i++)
            if (texts[i] is null) throw new ArgumentException($"values[{i}] is null", nameof(values));
        CheckDimensions(options?.Dimensions);
        SentenceEmbeddingOptions settings = SentenceEmbeddingOptions.From(options);
        string prefix = PromptText(PromptNameFor(settings));
        return Task.Run(() =>
        {
            TokenSequence[] inputs = Tokenize(texts, prefix, settings.Truncate, cancellationToken);
            float[][] vectors = EncodeTokens(inputs, settings.Normalize ?? Normalize, cancellationToken);
            return Generated(vectors, inputs.Sum(t => (long)t.Ids.Length), ModelId);
        }, cancellationToken);
    }

    /// <summary>The id clients see: the packaged or Hub id the model came from, else its folder's name.</summary>
    public string ModelId => Source.Kind == ModelSourceKind.Folder ? Path.GetFileName(Source.Id) : Source.Id;

    /// <summary>
    /// <see cref="EmbeddingGeneratorMetadata"/>, this model's <see cref="ModelFingerprint"/> (which a collection checks its vectors
    /// against), or the encoder itself.
    /// </summary>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return new EmbeddingGeneratorMetadata("funnel", null, ModelId, Dimension);
        if (serviceType == typeof(ModelFingerprint)) return Fingerprint;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Funnel's models have one output size; a request for another is refused rather than cut.</summary>
    internal void CheckDimensions(int? dimensions)
    {
        if (dimensions is { } d && d != Dimension)
            throw new NotSupportedException($"{ModelId} produces {Dimension}-dimensional embeddings and cannot shorten them (asked for {d})");
    }

    /// <summary>Wraps vectors without copying them, with the model id and the tokens they took.</summary>
    internal static GeneratedEmbeddings<Embedding<float>> Generated(float[][] vectors, long tokens, string modelId)
    {
        var created = DateTimeOffset.UtcNow;
        var result = new GeneratedEmbeddings<Embedding<float>>(vectors.Length)
        {
            Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens },
        };
        foreach (float[] vector in vectors) result.Add(new Embedding<float>(vector) { ModelId = modelId, CreatedAt = created });
        return result;
    }

    /// <summary>Embeds inputs already tokenized by <see cref="Tokenizer"/> (for callers that need the
    /// token counts too); each at most the model's max_position_embeddings long.</summary>
    public float[][] EncodeTokenized(IReadOnlyList<Encoding> encodings, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(encodings);
        return EncodeTokens(encodings.Select(e => new TokenSequence(e.InputIds, e.TokenTypeIds)).ToArray(), ct: ct);
    }

    /// <summary>Embeds already tokenized inputs (unpadded ids with [CLS] … [SEP]).</summary>
    internal float[][] EncodeTokens(IReadOnlyList<TokenSequence> inputs, bool? normalize = null, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        bool normalized = normalize ?? Normalize;
        var result = new float[inputs.Count][];
        int hidden = _model.Config.HiddenSize;
        TokenBatches.Run(_model, inputs, _options.BatchSize, _options.MaxThreads, (states, length, index) =>
        {
            var v = new float[Dimension];
            Inference.Pooling.Pool(states, length, hidden, Pooling, normalized, v);
            ModelOutputException.ThrowIfNotFinite(v, "the bi-encoder", "vector");
            result[index] = v;
        }, ct);
        return result;
    }

    /// <summary>Per-token last hidden states of one tokenized input, [length × hidden].</summary>
    internal float[] HiddenStates(TokenSequence input)
    {
        float[] states = [];
        TokenBatches.Run(_model, [input], 1, _options.MaxThreads, (s, _, _) => states = s.ToArray(), CancellationToken.None);
        return states;
    }

    public void Dispose() => _disposed = true;

    private static string? NoneIfEmpty(string prompt) => prompt.Length == 0 ? null : prompt;
}
