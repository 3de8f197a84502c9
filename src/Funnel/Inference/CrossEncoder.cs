using Funnel.Tokenization;

namespace Funnel.Inference;

/// <summary>A document's position in the caller's list and its cross-encoder score.</summary>
public sealed record RankedDocument(int Index, float Score);

/// <summary>
/// A cross-encoder reranker (BertForSequenceClassification with one label): scores
/// <c>[CLS] query [SEP] document [SEP]</c> pairs, truncated longest-first to the model's window.
/// Scores go through the activation the model's config names (<c>sbert_ce_default_activation_function</c>, or
/// sentence-transformers v4's <c>sentence_transformers.activation_fn</c>), or <see cref="EncoderOptions.Activation"/>;
/// a config that names none gets a sigmoid, as sentence-transformers gives one-label models. Thread-safe.
/// As an <see cref="IReranker"/> it reports both the activation's scores and the logits behind them.
/// </summary>
public sealed class CrossEncoder : IReranker, IDisposable
{
    private readonly BertModel _model;
    private readonly EncoderOptions _options;
    private bool _disposed;

    public BertTokenizer Tokenizer { get; }

    /// <summary>Pairs are truncated to this many tokens, specials included.</summary>
    public int MaxSequenceLength { get; }

    public ScoreActivation Activation { get; }

    /// <summary>The arithmetic of the linear layers (<see cref="EncoderOptions.Precision"/>).</summary>
    public InferencePrecision Precision => _options.Precision;

    /// <summary>Where the model folder came from (a Hub snapshot or another folder; no cross-encoder is packaged).</summary>
    public ModelSource Source { get; }

    private CrossEncoder(BertModel model, BertTokenizer tokenizer, int maxSeq, ScoreActivation activation, EncoderOptions options, ModelSource source)
    {
        _model = model;
        Tokenizer = tokenizer;
        MaxSequenceLength = maxSeq;
        Activation = activation;
        _options = options;
        Source = source;
    }

    public static CrossEncoder Load(string modelDir, EncoderOptions? options = null)
    {
        options ??= new EncoderOptions();
        options.Validate();
        if (!Directory.Exists(modelDir)) throw new ModelFormatException($"{modelDir}: model folder not found");
        BertConfig config = BertConfig.Load(modelDir);
        string configPath = Path.Combine(modelDir, "config.json");
        if (config.Architecture != BertArchitecture.BertForSequenceClassification)
            throw new ModelFormatException($"{configPath}: a cross-encoder needs architecture BertForSequenceClassification, this is {config.Architecture}");
        if (config.NumLabels != 1)
            throw new ModelFormatException($"{configPath}: a reranking cross-encoder has 1 label, this model has {config.NumLabels}");
        ScoreActivation activation = options.Activation ?? ParseActivation(config.ActivationFunction, configPath);
        BertTokenizer tokenizer = BertTokenizer.FromFolder(modelDir);
        int maxSeq = Math.Min(options.MaxSequenceLength ?? tokenizer.ModelMaxLength ?? config.MaxPositionEmbeddings,
            config.MaxPositionEmbeddings);
        BertModel model = BertModel.Load(modelDir, config, withClassifier: true, options.Precision, out _);
        return new CrossEncoder(model, tokenizer, maxSeq, activation, options, ModelSource.Of(modelDir));
    }

    /// <summary>Loads a cross-encoder by Hub id (<c>org/name[@revision]</c>, downloaded into the Hub cache once) or folder, as
    /// sentence-transformers' <c>CrossEncoder("id")</c> does; resolved as the CLI resolves <c>--model</c>.</summary>
    public static Task<CrossEncoder> FromPretrainedAsync(string idOrPath, CancellationToken ct = default) => FromPretrainedAsync(idOrPath, null, ct);

    /// <summary>As <see cref="FromPretrainedAsync(string, CancellationToken)"/>, with run-time <paramref name="options"/>.</summary>
    public static async Task<CrossEncoder> FromPretrainedAsync(string idOrPath, EncoderOptions? options, CancellationToken ct = default) =>
        Load(await SentenceEncoder.ResolvePretrainedAsync(idOrPath, ct), options);

    /// <summary>Maps sentence-transformers' activation class names; none configured means its one-label default, a sigmoid.</summary>
    private static ScoreActivation ParseActivation(string? name, string path) => name switch
    {
        "torch.nn.modules.linear.Identity" or "torch.nn.Identity" => ScoreActivation.Identity,
        null or "torch.nn.modules.activation.Sigmoid" or "torch.nn.Sigmoid" => ScoreActivation.Sigmoid,
        _ => throw new ModelFormatException($"{path}: unsupported cross-encoder activation \"{name}\" (supported: Identity, Sigmoid)"),
    };

    /// <summary>Scores each document against the query, in document order.</summary>
    public float[] Score(string query, IReadOnlyList<string> documents, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(documents);
        return Score(documents.Select(d => (query, d)).ToList(), ct);
    }

    /// <summary>Scores (query, document) pairs, in order.</summary>
    public float[] Score(IReadOnlyList<(string Query, string Document)> pairs, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(pairs);
        return ScoreTokens(Tokenize(pairs, truncate: true, ct), ct);
    }

    /// <summary>
    /// Tokenizes pairs once each: cut to the window, or when <paramref name="truncate"/> is false encoded whole and refused with
    /// <see cref="InputTooLongException"/> when too long (a pair that fits is the same either way).
    /// </summary>
    internal TokenSequence[] Tokenize(IReadOnlyList<(string Query, string Document)> pairs, bool truncate, CancellationToken ct)
    {
        for (int i = 0; i < pairs.Count; i++)
            if (pairs[i].Query is null || pairs[i].Document is null) throw new ArgumentException($"pairs[{i}] has a null query or document", nameof(pairs));
        int limit = truncate ? MaxSequenceLength : int.MaxValue;
        TokenSequence[] inputs = TokenBatches.Tokenize(pairs.Count, i => Tokenizer.EncodePair(pairs[i].Query, pairs[i].Document, limit), _options.MaxThreads, ct);
        if (!truncate)
            for (int i = 0; i < inputs.Length; i++)
                if (inputs[i].Ids.Length > MaxSequenceLength) throw new InputTooLongException(i, inputs[i].Ids.Length, MaxSequenceLength);
        return inputs;
    }

    /// <summary>Scores each document against the query (<see cref="IReranker"/>): activation scores, logits and tokens, in document order.</summary>
    public Task<RerankScores> ScoreAsync(string query, IReadOnlyList<string> documents, RerankOptions? options = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(documents);
        bool truncate = options?.Truncate ?? true;
        return Task.Run(() =>
        {
            TokenSequence[] inputs = Tokenize(documents.Select(d => (query, d)).ToList(), truncate, cancellationToken);
            var (scores, logits) = ScoreAndLogits(inputs, cancellationToken);
            return new RerankScores(scores, logits, inputs.Sum(t => (long)t.Ids.Length));
        }, cancellationToken);
    }

    /// <summary>Scores pairs already encoded by <see cref="Tokenizer"/>'s EncodePair (for callers that
    /// need the token counts too).</summary>
    public float[] ScoreTokenized(IReadOnlyList<Encoding> pairs, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(pairs);
        return ScoreTokens(pairs.Select(e => new TokenSequence(e.InputIds, e.TokenTypeIds)).ToArray(), ct);
    }

    /// <summary>The <paramref name="topK"/> best documents, in <see cref="ScoreOrder"/> (best first, ties keep input order).</summary>
    public IReadOnlyList<RankedDocument> Rank(string query, IReadOnlyList<string> documents, int topK, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(topK);
        float[] scores = Score(query, documents, ct);
        return ScoreOrder.BestFirst(scores).Take(topK).Select(i => new RankedDocument(i, scores[i])).ToList();
    }

    /// <summary>The score <see cref="Activation"/> gives a logit.</summary>
    public float Activate(float logit) => Activation == ScoreActivation.Sigmoid ? 1f / (1f + MathF.Exp(-logit)) : logit;

    /// <summary>Scores already tokenized pairs.</summary>
    internal float[] ScoreTokens(IReadOnlyList<TokenSequence> inputs, CancellationToken ct = default) => ScoreAndLogits(inputs, ct).Scores;

    /// <summary>Scores already tokenized pairs: activation scores and the logits behind them.</summary>
    internal (float[] Scores, float[] Logits) ScoreAndLogits(IReadOnlyList<TokenSequence> inputs, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var scores = new float[inputs.Count];
        int hidden = _model.Config.HiddenSize;
        // The head is tiny next to the encoder: gather each batch's [CLS] rows, classify them at the end.
        float[] cls = new float[inputs.Count * hidden];
        TokenBatches.Run(_model, inputs, _options.BatchSize, _options.MaxThreads,
            (states, _, index) => states[..hidden].CopyTo(cls.AsSpan(index * hidden, hidden)), ct);
        float[] logits = _model.Classify(cls, inputs.Count);
        if (logits.Length > 0) ModelOutputException.ThrowIfNotFinite(logits, "the cross-encoder", "score");
        for (int i = 0; i < scores.Length; i++) scores[i] = Activate(logits[i]);
        return (scores, logits);
    }

    public void Dispose() => _disposed = true;
}
