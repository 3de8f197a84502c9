using System.Buffers;
using System.Numerics.Tensors;
using Funnel.Numerics;
using Funnel.Inference.Weights;

namespace Funnel.Inference;

/// <summary>
/// The BERT encoder (Hugging Face <c>BertModel</c> semantics) with the linear layers' weights converted
/// once into packed fp32, or quantized to int8 (<see cref="InferencePrecision.Int8"/>). A batch runs unpadded: the tokens of all sequences form one
/// [totalTokens × hidden] matrix for every linear layer, and attention runs per sequence at its
/// own length, so padding costs nothing and needs no mask. Immutable after load, so concurrent
/// callers may share it; each call rents its own work buffers.
/// </summary>
internal sealed class BertModel
{
    private sealed record Layer(
        Dense Qkv, Dense AttentionOut, float[] AttentionNormGamma, float[] AttentionNormBeta,
        Dense Intermediate, Dense Output, float[] OutputNormGamma, float[] OutputNormBeta);

    /// <summary>A linear layer's weight, fp32 or int8, and its bias.</summary>
    private sealed class Dense
    {
        private readonly PackedMatrix? _fp32;
        private readonly QuantizedMatrix? _int8;
        private readonly float[] _bias;

        public Dense(ReadOnlySpan<float> weight, int n, int k, float[] bias, InferencePrecision precision)
        {
            if (precision == InferencePrecision.Int8) _int8 = QuantizedMatrix.Quantize(weight, n, k);
            else _fp32 = PackedMatrix.Pack(weight, n, k);
            _bias = bias;
        }

        public void Apply(ReadOnlySpan<float> x, int m, Span<float> y, Epilogue epilogue = Epilogue.None, ReadOnlySpan<float> residual = default,
            int maxThreads = 1)
        {
            if (_int8 is not null) QuantizedMatMul.Linear(x, m, _int8, _bias, y, epilogue, residual, maxThreads);
            else MatMul.Linear(x, m, _fp32!, _bias, y, epilogue, residual, maxThreads);
        }
    }

    private readonly float[] _wordEmbeddings, _positionEmbeddings, _typeEmbeddings, _embedNormGamma, _embedNormBeta;
    private readonly Layer[] _layers;
    private readonly Dense? _pooler, _classifier;

    public BertConfig Config { get; }

    private BertModel(BertConfig config, IWeightSource w, bool withClassifier, InferencePrecision precision)
    {
        Config = config;
        int h = config.HiddenSize, inter = config.IntermediateSize;
        _wordEmbeddings = Read(w, "embeddings.word_embeddings.weight", config.VocabSize, h);
        _positionEmbeddings = Read(w, "embeddings.position_embeddings.weight", config.MaxPositionEmbeddings, h);
        _typeEmbeddings = Read(w, "embeddings.token_type_embeddings.weight", config.TypeVocabSize, h);
        _embedNormGamma = Read(w, "embeddings.LayerNorm.weight", h);
        _embedNormBeta = Read(w, "embeddings.LayerNorm.bias", h);
        _layers = new Layer[config.Layers];
        for (int l = 0; l < config.Layers; l++)
        {
            string p = $"encoder.layer.{l}.";
            _layers[l] = new Layer(
                Linear(w, [p + "attention.self.query", p + "attention.self.key", p + "attention.self.value"], h, h, precision),
                Linear(w, [p + "attention.output.dense"], h, h, precision),
                Read(w, p + "attention.output.LayerNorm.weight", h), Read(w, p + "attention.output.LayerNorm.bias", h),
                Linear(w, [p + "intermediate.dense"], inter, h, precision),
                Linear(w, [p + "output.dense"], h, inter, precision),
                Read(w, p + "output.LayerNorm.weight", h), Read(w, p + "output.LayerNorm.bias", h));
        }
        if (withClassifier)
        {
            // The head is two small products on [CLS] rows only: it stays fp32 whatever the precision.
            _pooler = Linear(w, ["pooler.dense"], h, h, InferencePrecision.Fp32);
            _classifier = Linear(w, ["classifier"], config.NumLabels, h, InferencePrecision.Fp32);
        }
    }

    /// <summary>Loads the encoder, plus the pooler and classifier when <paramref name="withClassifier"/>.</summary>
    public static BertModel Load(string modelDir, BertConfig config, bool withClassifier, InferencePrecision precision,
        out IReadOnlyList<string> weightPaths)
    {
        using IWeightSource w = ModelWeights.Open(modelDir, config);
        weightPaths = w.Paths;
        return new BertModel(config, w, withClassifier, precision);
    }

    private static float[] Read(IWeightSource w, string name, params int[] shape)
    {
        var result = new float[shape.Aggregate(1, (a, d) => checked(a * d))];
        w.Read(name, shape, result);
        return result;
    }

    /// <summary>
    /// The linear layer whose weight is the row-wise concatenation of the [n × k] weights <c>{name}.weight</c>
    /// (several for the fused QKV projection) and whose bias is that of the <c>{name}.bias</c>.
    /// </summary>
    private static Dense Linear(IWeightSource w, string[] names, int n, int k, InferencePrecision precision)
    {
        int size = n * k;
        float[] buffer = ArrayPool<float>.Shared.Rent(size * names.Length);
        try
        {
            var bias = new float[n * names.Length];
            for (int i = 0; i < names.Length; i++)
            {
                w.Read(names[i] + ".weight", [n, k], buffer.AsSpan(i * size, size));
                w.Read(names[i] + ".bias", [n], bias.AsSpan(i * n, n));
            }
            return new Dense(buffer.AsSpan(0, size * names.Length), n * names.Length, k, bias, precision);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Runs the encoder on a batch of sequences given back to back: <paramref name="ids"/> and
    /// <paramref name="typeIds"/> hold every sequence's tokens concatenated, <paramref name="lengths"/>
    /// each sequence's length. Writes the last hidden states [totalTokens × hidden] to <paramref name="hidden"/>.
    /// </summary>
    public void Forward(ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds, ReadOnlySpan<int> lengths, Span<float> hidden,
        int maxThreads, CancellationToken ct)
    {
        BertConfig c = Config;
        int total = ids.Length, h = c.HiddenSize;
        if (typeIds.Length != total) throw new ArgumentException($"{typeIds.Length} token type ids for {total} tokens", nameof(typeIds));
        if (hidden.Length < total * h) throw new ArgumentException($"hidden holds {hidden.Length} values, needs {total * h}", nameof(hidden));
        int[] offsets = new int[lengths.Length + 1];
        for (int s = 0; s < lengths.Length; s++)
        {
            if (lengths[s] < 1 || lengths[s] > c.MaxPositionEmbeddings)
                throw new ArgumentException($"sequence {s} has {lengths[s]} tokens; the model takes 1 to {c.MaxPositionEmbeddings}", nameof(lengths));
            offsets[s + 1] = offsets[s] + lengths[s];
        }
        if (offsets[^1] != total) throw new ArgumentException($"lengths sum to {offsets[^1]}, but {total} tokens were given", nameof(lengths));

        Span<float> x = hidden[..(total * h)];
        Embed(ids, typeIds, offsets, x);
        float[] qkv = ArrayPool<float>.Shared.Rent(total * 3 * h);
        float[] context = ArrayPool<float>.Shared.Rent(total * h);
        float[] intermediate = ArrayPool<float>.Shared.Rent(total * c.IntermediateSize);
        try
        {
            foreach (Layer layer in _layers)
            {
                ct.ThrowIfCancellationRequested();
                layer.Qkv.Apply(x, total, qkv.AsSpan(0, total * 3 * h), maxThreads: maxThreads);
                // Each sequence attends only to itself, at its own length; (sequence, head) pairs spread over threads.
                Attention.SelfAttention(qkv.AsSpan(0, total * 3 * h), lengths, c.Heads, c.HeadDim, context.AsSpan(0, total * h), maxThreads);
                layer.AttentionOut.Apply(context.AsSpan(0, total * h), total, x, Epilogue.Residual, x, maxThreads);
                Normalization.LayerNorm(x, total, layer.AttentionNormGamma, layer.AttentionNormBeta, c.LayerNormEps, maxThreads);
                Span<float> inter = intermediate.AsSpan(0, total * c.IntermediateSize);
                layer.Intermediate.Apply(x, total, inter, Epilogue.Gelu, maxThreads: maxThreads);
                layer.Output.Apply(inter, total, x, Epilogue.Residual, x, maxThreads);
                Normalization.LayerNorm(x, total, layer.OutputNormGamma, layer.OutputNormBeta, c.LayerNormEps, maxThreads);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(qkv);
            ArrayPool<float>.Shared.Return(context);
            ArrayPool<float>.Shared.Return(intermediate);
        }
    }

    private void Embed(ReadOnlySpan<int> ids, ReadOnlySpan<int> typeIds, int[] offsets, Span<float> x)
    {
        BertConfig c = Config;
        int h = c.HiddenSize;
        for (int s = 0; s + 1 < offsets.Length; s++)
        {
            for (int t = offsets[s]; t < offsets[s + 1]; t++)
            {
                int id = ids[t], type = typeIds[t];
                if ((uint)id >= (uint)c.VocabSize) throw new ArgumentException($"token id {id} (sequence {s}) is outside the vocabulary of {c.VocabSize}", nameof(ids));
                if ((uint)type >= (uint)c.TypeVocabSize) throw new ArgumentException($"token type id {type} (sequence {s}) is outside 0..{c.TypeVocabSize - 1}", nameof(typeIds));
                Span<float> row = x.Slice(t * h, h);
                TensorPrimitives.Add(_wordEmbeddings.AsSpan(id * h, h), _positionEmbeddings.AsSpan((t - offsets[s]) * h, h), row);
                TensorPrimitives.Add(row, _typeEmbeddings.AsSpan(type * h, h), row);
            }
        }
        Normalization.LayerNorm(x, ids.Length, _embedNormGamma, _embedNormBeta, Config.LayerNormEps);
    }

    /// <summary>
    /// BertForSequenceClassification's head on the [CLS] rows: logits = classifier(tanh(pooler(h_cls))).
    /// <paramref name="clsRows"/> is [count × hidden]; returns [count × numLabels].
    /// </summary>
    public float[] Classify(ReadOnlySpan<float> clsRows, int count)
    {
        if (_pooler is not { } pooler || _classifier is not { } classifier)
            throw new InvalidOperationException("this model was loaded without its classification head");
        float[] pooled = new float[count * Config.HiddenSize];
        pooler.Apply(clsRows, count, pooled);
        TensorPrimitives.Tanh(pooled, pooled);
        float[] logits = new float[count * Config.NumLabels];
        classifier.Apply(pooled, count, logits);
        return logits;
    }
}
