using Funnel.Inference;
using Funnel.Inference.Weights;
using Funnel.Tokenization;

namespace Funnel.Training;

/// <summary>What is being trained: a sentence-transformers bi-encoder or a one-label cross-encoder.</summary>
public enum ModelKind
{
    /// <summary>BERT → pooling → optional Normalize; texts are embedded one at a time.</summary>
    BiEncoder,
    /// <summary>BertForSequenceClassification with one label; (query, document) pairs are scored together.</summary>
    CrossEncoder,
}

/// <summary>
/// A model being trained: the encoder, its head (pooling for a bi-encoder, pooler + classifier for a
/// cross-encoder) and the tokenizer, loaded from a Hugging Face / sentence-transformers folder.
/// </summary>
internal sealed class TrainingModel(ModelKind kind, BertConfig config, TrainableBert encoder, PoolingHead? pooling, ClassifierHead? classifier,
    (float[] Weight, float[] Bias)? frozenPooler, BertTokenizer tokenizer, int maxLength, string initialization)
{
    private readonly LinearLayer[] _linears = encoder.Linears.Concat(classifier?.Linears ?? []).ToArray();

    public ModelKind Kind { get; } = kind;

    public BertConfig Config { get; } = config;

    public TrainableBert Encoder { get; } = encoder;

    public PoolingHead? Pooling { get; } = pooling;

    public ClassifierHead? Classifier { get; } = classifier;

    /// <summary>A bi-encoder's pooler: not part of the sentence embedding, so never trained, but kept in the checkpoint
    /// (as sentence-transformers keeps it).</summary>
    public (float[] Weight, float[] Bias)? FrozenPooler { get; } = frozenPooler;

    public BertTokenizer Tokenizer { get; } = tokenizer;

    /// <summary>Inputs (pairs, for a cross-encoder) are truncated to this many tokens, specials included.</summary>
    public int MaxLength { get; } = maxLength;

    /// <summary>How the head was obtained, for the log: reused from the base or newly initialised.</summary>
    public string Initialization { get; } = initialization;

    /// <summary>Every trainable parameter, in checkpoint order.</summary>
    public IReadOnlyList<Parameter> Parameters { get; } = encoder.Parameters.Concat(classifier?.Parameters ?? []).ToList();

    /// <summary>The head the losses see: pooling or the classifier.</summary>
    public ISequenceHead Head => (ISequenceHead?)Pooling ?? Classifier!;

    /// <summary>
    /// Loads <paramref name="baseDir"/> for training as <paramref name="kind"/>. A cross-encoder trained from a
    /// bi-encoder gets what Hugging Face's BertForSequenceClassification.from_pretrained gives it: the base's pooler
    /// when it has one (else a new one) and a new classifier, new weights drawn from N(0, initializer_range) with
    /// <paramref name="seed"/>, biases 0.
    /// </summary>
    public static TrainingModel Load(string baseDir, ModelKind kind, bool dropout, int? maxLength, ulong seed)
    {
        if (!Directory.Exists(baseDir)) throw new ModelFormatException($"{baseDir}: model folder not found");
        BertConfig config = BertConfig.Load(baseDir);
        BertTokenizer tokenizer = BertTokenizer.FromFolder(baseDir);
        DropoutSettings dropouts = dropout ? TrainingConfig.Dropouts(baseDir) : DropoutSettings.None;
        using IWeightSource weights = ModelWeights.Open(baseDir, config);
        float[] Tensor(string name, int[] shape)
        {
            var values = new float[shape.Aggregate(1, (a, d) => checked(a * d))];
            weights.Read(name, shape, values);
            return values;
        }
        float[] Read(string name, int[] shape)
        {
            if (!name.EndsWith(TrainableBert.QkvName + ".weight", StringComparison.Ordinal) && !name.EndsWith(TrainableBert.QkvName + ".bias", StringComparison.Ordinal))
                return Tensor(name, shape);
            // The fused projection is query, key and value stacked.
            string prefix = name[..name.IndexOf(TrainableBert.QkvName, StringComparison.Ordinal)] + "attention.self.";
            string suffix = name.EndsWith(".weight", StringComparison.Ordinal) ? ".weight" : ".bias";
            int[] part = shape.Length == 2 ? [shape[0] / 3, shape[1]] : [shape[0] / 3];
            return [.. Tensor(prefix + "query" + suffix, part), .. Tensor(prefix + "key" + suffix, part), .. Tensor(prefix + "value" + suffix, part)];
        }
        var encoder = new TrainableBert(config, dropouts, Read);
        int h = config.HiddenSize;
        bool hasPooler = weights.Contains("pooler.dense.weight") && weights.Contains("pooler.dense.bias");
        if (kind == ModelKind.BiEncoder)
        {
            SentenceTransformerConfig st = SentenceTransformerConfig.Load(baseDir);
            int length = Math.Min(maxLength ?? st.MaxSeqLength ?? tokenizer.ModelMaxLength ?? config.MaxPositionEmbeddings, config.MaxPositionEmbeddings);
            (float[], float[])? frozen = hasPooler ? (Read("pooler.dense.weight", [h, h]), Read("pooler.dense.bias", [h])) : null;
            return new TrainingModel(kind, config, encoder, new PoolingHead(st.Pooling, st.Normalize, h), null, frozen, tokenizer, length,
                $"pooling {Inference.Pooling.Describe(st.Pooling)}{(st.Normalize ? " + normalize" : "")}");
        }

        double std = TrainingConfig.InitializerRange(baseDir);
        bool hasClassifier = config.Architecture == BertArchitecture.BertForSequenceClassification && config.NumLabels == 1
            && weights.Contains("classifier.weight") && weights.Contains("classifier.bias");
        Parameter New(string name, int[] shape, bool decay) =>
            new(name, shape, decay ? SeededNormal.Draw(seed, name, shape.Aggregate(1, (a, d) => a * d), std) : new float[shape.Aggregate(1, (a, d) => a * d)], decay);
        Parameter Existing(string name, int[] shape, bool decay) => new(name, shape, Read(name, shape), decay);
        Func<string, int[], bool, Parameter> pooler = hasPooler ? Existing : New, classifier = hasClassifier ? Existing : New;
        var head = new ClassifierHead(
            new LinearLayer(pooler("pooler.dense.weight", [h, h], true), pooler("pooler.dense.bias", [h], false)),
            new LinearLayer(classifier("classifier.weight", [1, h], true), classifier("classifier.bias", [1], false)),
            dropouts.Classifier);
        int pairLength = Math.Min(maxLength ?? tokenizer.ModelMaxLength ?? config.MaxPositionEmbeddings, config.MaxPositionEmbeddings);
        string init = $"pooler {(hasPooler ? "from the base" : "new")}, classifier {(hasClassifier ? "from the base" : "new")}"
                      + (hasPooler && hasClassifier ? "" : $" (N(0, {std}) seeded, biases 0)");
        return new TrainingModel(kind, config, encoder, null, head, null, tokenizer, pairLength, init);
    }

    /// <summary>Refreshes the packed weights after an optimizer step, one layer per work item.</summary>
    public void Repack(int threads = 1) => Numerics.WorkSplit.Run(new RepackJob(_linears), _linears.Length, threads);

    private readonly struct RepackJob(LinearLayer[] linears) : Numerics.IWorkItems
    {
        public void Run(int item) => linears[item].Repack();
    }

    /// <summary>Representations of already tokenized inputs without dropout (an embedding or a logit each,
    /// [count × head dimension]): longest first in chunks of 32, as inference batches them.</summary>
    public float[] Represent(IReadOnlyList<TokenSequence> inputs, int threads, CancellationToken ct)
    {
        int[] order = Enumerable.Range(0, inputs.Count).OrderByDescending(i => inputs[i].Ids.Length).ThenBy(i => i).ToArray();
        float[] sorted = GradientPass.Represent(this, order.Select(i => inputs[i]).ToArray(), new ulong[order.Length], training: false, chunk: 32, threads, ct);
        int dim = Head.Dimension;
        var result = new float[sorted.Length];
        for (int k = 0; k < order.Length; k++) sorted.AsSpan(k * dim, dim).CopyTo(result.AsSpan(order[k] * dim, dim));
        return result;
    }

    /// <summary>A bi-encoder input: [CLS] text [SEP], truncated.</summary>
    public TokenSequence EncodeText(string text)
    {
        Encoding e = Tokenizer.Encode(text, MaxLength);
        return new TokenSequence(e.InputIds, e.TokenTypeIds);
    }

    /// <summary>A cross-encoder input: [CLS] a [SEP] b [SEP], truncated longest first.</summary>
    public TokenSequence EncodePair(string a, string b)
    {
        Encoding e = Tokenizer.EncodePair(a, b, MaxLength);
        return new TokenSequence(e.InputIds, e.TokenTypeIds);
    }
}
