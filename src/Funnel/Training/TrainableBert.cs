using System.Numerics.Tensors;
using Funnel.Inference;
using Funnel.Numerics;

namespace Funnel.Training;

/// <summary>
/// The BERT encoder (Hugging Face BertModel semantics) with trainable fp32 parameters: a forward pass that
/// optionally saves what the backward pass needs, and the backward pass itself, which accumulates every
/// parameter's gradient. The batch runs unpadded as in inference, and with dropout off the forward pass gives
/// the inference encoder's last hidden states bit for bit.
/// </summary>
internal sealed class TrainableBert
{
    public TrainableBert(BertConfig config, DropoutSettings dropout, Func<string, int[], float[]> read)
    {
        Config = config;
        Dropout = dropout;
        int h = config.HiddenSize, inter = config.IntermediateSize;
        Parameter P(string name, int[] shape, bool decay = true, bool sparse = false) => new(name, shape, read(name, shape), decay, sparse);
        LayerNormLayer Norm(string prefix) =>
            new(P(prefix + ".weight", [h], decay: false), P(prefix + ".bias", [h], decay: false), config.LayerNormEps);
        LinearLayer Linear(string prefix, int n, int k) => new(P(prefix + ".weight", [n, k]), P(prefix + ".bias", [n], decay: false));

        WordEmbeddings = P("embeddings.word_embeddings.weight", [config.VocabSize, h], sparse: true);
        PositionEmbeddings = P("embeddings.position_embeddings.weight", [config.MaxPositionEmbeddings, h], sparse: true);
        TypeEmbeddings = P("embeddings.token_type_embeddings.weight", [config.TypeVocabSize, h]);
        EmbeddingNorm = Norm("embeddings.LayerNorm");
        Layers = new EncoderLayer[config.Layers];
        for (int l = 0; l < config.Layers; l++)
        {
            string p = $"encoder.layer.{l}.";
            Layers[l] = new EncoderLayer(
                Linear(p + QkvName, 3 * h, h), Linear(p + "attention.output.dense", h, h), Norm(p + "attention.output.LayerNorm"),
                Linear(p + "intermediate.dense", inter, h), Linear(p + "output.dense", h, inter), Norm(p + "output.LayerNorm"));
        }
    }

    /// <summary>The fused Q, K, V projection's name: query, key and value stacked along the output dimension.</summary>
    public const string QkvName = "attention.self.qkv";

    public BertConfig Config { get; }

    public DropoutSettings Dropout { get; }

    public Parameter WordEmbeddings { get; }

    public Parameter PositionEmbeddings { get; }

    public Parameter TypeEmbeddings { get; }

    public LayerNormLayer EmbeddingNorm { get; }

    public EncoderLayer[] Layers { get; }

    /// <summary>Every parameter in checkpoint order.</summary>
    public IEnumerable<Parameter> Parameters =>
        new[] { WordEmbeddings, PositionEmbeddings, TypeEmbeddings, EmbeddingNorm.Gamma, EmbeddingNorm.Beta }.Concat(Layers.SelectMany(l => l.Parameters));

    public IEnumerable<LinearLayer> Linears => Layers.SelectMany(l => new[] { l.Qkv, l.AttentionOutput, l.Intermediate, l.Output });

    /// <summary>
    /// Runs the encoder; <see cref="EncoderActivations.Hidden"/> holds the last hidden states [tokens × hidden].
    /// <paramref name="training"/> applies dropout; <paramref name="keep"/> saves what <see cref="Backward"/> needs.
    /// </summary>
    public EncoderActivations Forward(SequenceBatch batch, bool training, bool keep, int threads, CancellationToken ct)
    {
        BertConfig c = Config;
        int tokens = batch.Tokens, h = c.HiddenSize;
        var act = new EncoderActivations(batch, tokens, h, keep ? c.Layers : 0, c.IntermediateSize, training);
        Span<float> x = act.Hidden;
        using var sum = new PooledArray(tokens * h);
        using var transient = keep ? null : new SavedLayer(tokens, h, c.IntermediateSize);
        using var activated = new PooledArray(tokens * c.IntermediateSize);
        using var afterAttention = new PooledArray(tokens * h);

        Embed(batch, sum.Span);
        EmbeddingNorm.Forward(sum.Span, tokens, act.EmbeddingNormalized.Span, act.EmbeddingInverseStd.Span, x, threads);
        if (training) DropRows(x, batch, Dropout.Hidden, DropoutSite.Embeddings, 0);

        for (int l = 0; l < c.Layers; l++)
        {
            ct.ThrowIfCancellationRequested();
            EncoderLayer layer = Layers[l];
            SavedLayer saved = keep ? act.Layers[l] : transient!;
            Span<float> qkv = saved.Qkv.Span, context = saved.Context.Span;
            layer.Qkv.Forward(x, tokens, qkv, threads);
            AttentionLayer.Forward(qkv, batch, c.Heads, c.HeadDim, context, training ? Dropout.Attention : default, l, threads);
            ProjectAndAdd(layer.AttentionOutput, context, x, sum.Span, batch, training, DropoutSite.AttentionOutput, l, threads);
            layer.AttentionNorm.Forward(sum.Span, tokens, saved.AttentionNormalized.Span, saved.AttentionInverseStd.Span, afterAttention.Span, threads);

            Span<float> inter = activated.Span;
            if (keep)
            {
                layer.Intermediate.Forward(afterAttention.Span, tokens, saved.PreActivation.Span, threads);
                Gelu.Forward(saved.PreActivation.Span, inter, inter.Length, threads);
            }
            else
            {
                layer.Intermediate.Forward(afterAttention.Span, tokens, inter, threads, Epilogue.Gelu);
            }
            ProjectAndAdd(layer.Output, inter, afterAttention.Span, sum.Span, batch, training, DropoutSite.FeedForwardOutput, l, threads);
            layer.OutputNorm.Forward(sum.Span, tokens, saved.OutputNormalized.Span, saved.OutputInverseStd.Span, x, threads);
        }
        return act;
    }

    /// <summary>s = dropout(x·Wᵀ + b) + residual; without dropout the residual is fused into the product, as inference does.</summary>
    private void ProjectAndAdd(LinearLayer linear, ReadOnlySpan<float> input, ReadOnlySpan<float> residual, Span<float> s, SequenceBatch batch,
        bool training, DropoutSite site, int layer, int threads)
    {
        int tokens = batch.Tokens;
        if (!training || !Dropout.Hidden.IsActive)
        {
            linear.Forward(input, tokens, s, threads, Epilogue.Residual, residual);
            return;
        }
        linear.Forward(input, tokens, s, threads);
        DropRows(s, batch, Dropout.Hidden, site, layer);
        TensorPrimitives.Add(s[..(tokens * linear.Out)], residual[..(tokens * linear.Out)], s);
    }

    /// <summary>Applies (or, on a gradient, differentiates) a hidden-size dropout mask, one stream per token.</summary>
    private void DropRows(Span<float> rows, SequenceBatch batch, Dropout dropout, DropoutSite site, int layer)
    {
        if (!dropout.IsActive) return;
        int h = Config.HiddenSize;
        for (int s = 0; s < batch.Count; s++)
            for (int t = 0; t < batch.Lengths[s]; t++)
                dropout.Apply(rows.Slice((batch.Offsets[s] + t) * h, h), Training.Dropout.RowStream(batch.DropoutKeys[s], site, layer, t));
    }

    private void Embed(SequenceBatch batch, Span<float> x)
    {
        BertConfig c = Config;
        int h = c.HiddenSize;
        for (int s = 0; s < batch.Count; s++)
        {
            if (batch.Lengths[s] < 1 || batch.Lengths[s] > c.MaxPositionEmbeddings)
                throw new ArgumentException($"sequence {s} has {batch.Lengths[s]} tokens; the model takes 1 to {c.MaxPositionEmbeddings}", nameof(batch));
            for (int t = batch.Offsets[s]; t < batch.Offsets[s + 1]; t++)
            {
                int id = batch.Ids[t], type = batch.TypeIds[t];
                if ((uint)id >= (uint)c.VocabSize) throw new ArgumentException($"token id {id} (sequence {s}) is outside the vocabulary of {c.VocabSize}", nameof(batch));
                if ((uint)type >= (uint)c.TypeVocabSize) throw new ArgumentException($"token type id {type} (sequence {s}) is outside 0..{c.TypeVocabSize - 1}", nameof(batch));
                Span<float> row = x.Slice(t * h, h);
                TensorPrimitives.Add(WordEmbeddings.Value.AsSpan(id * h, h), PositionEmbeddings.Value.AsSpan((t - batch.Offsets[s]) * h, h), row);
                TensorPrimitives.Add(row, TypeEmbeddings.Value.AsSpan(type * h, h), row);
            }
        }
    }

    /// <summary>
    /// Accumulates every parameter's gradient from d(last hidden states) <paramref name="dHidden"/>
    /// [tokens × hidden], which is used as scratch. <paramref name="act"/> must come from a forward pass with keep.
    /// </summary>
    public void Backward(EncoderActivations act, Span<float> dHidden, int threads, CancellationToken ct)
    {
        if (act.Layers.Length != Config.Layers) throw new InvalidOperationException("the forward pass did not keep its activations");
        BertConfig c = Config;
        SequenceBatch batch = act.Batch;
        int tokens = batch.Tokens, h = c.HiddenSize;
        Span<float> dx = dHidden[..(tokens * h)];
        using var ds = new PooledArray(tokens * h);
        using var dt = new PooledArray(tokens * h);
        using var wide = new PooledArray(tokens * c.IntermediateSize);
        using var narrow = new PooledArray(tokens * h);
        using var dContext = new PooledArray(tokens * h);
        using var dQkv = new PooledArray(tokens * 3 * h);
        bool drop = act.Training && Dropout.Hidden.IsActive;
        Dropout attention = act.Training ? Dropout.Attention : default;

        for (int l = c.Layers - 1; l >= 0; l--)
        {
            ct.ThrowIfCancellationRequested();
            EncoderLayer layer = Layers[l];
            SavedLayer saved = act.Layers[l];

            // x2 = LN(dropout(g·Woᵀ + b) + x1)
            layer.OutputNorm.Backward(dx, saved.OutputNormalized.Span, saved.OutputInverseStd.Span, tokens, ds.Span, threads);
            Span<float> dProjected = ds.Span;
            if (drop)
            {
                ds.Span.CopyTo(dt.Span);
                DropRows(dt.Span, batch, Dropout.Hidden, DropoutSite.FeedForwardOutput, l);
                dProjected = dt.Span;
            }
            Gelu.Forward(saved.PreActivation.Span, wide.Span, wide.Length, threads);
            layer.Output.AccumulateGradients(dProjected, wide.Span, tokens, threads);
            layer.Output.InputGradient(dProjected, tokens, wide.Span, threads);
            Gelu.Backward(saved.PreActivation.Span, wide.Span, wide.Length, threads);

            // u = x1·Wiᵀ + b, x1 = LN(dropout(ctx·Waᵀ + b) + a); the skip connection carries ds on to x1.
            layer.AttentionNorm.Output(saved.AttentionNormalized.Span, tokens, narrow.Span, threads);
            layer.Intermediate.AccumulateGradients(wide.Span, narrow.Span, tokens, threads);
            layer.Intermediate.InputGradient(wide.Span, tokens, narrow.Span, threads, residual: ds.Span);
            layer.AttentionNorm.Backward(narrow.Span, saved.AttentionNormalized.Span, saved.AttentionInverseStd.Span, tokens, ds.Span, threads);
            dProjected = ds.Span;
            if (drop)
            {
                ds.Span.CopyTo(dt.Span);
                DropRows(dt.Span, batch, Dropout.Hidden, DropoutSite.AttentionOutput, l);
                dProjected = dt.Span;
            }
            layer.AttentionOutput.AccumulateGradients(dProjected, saved.Context.Span, tokens, threads);
            layer.AttentionOutput.InputGradient(dProjected, tokens, dContext.Span, threads);
            AttentionLayer.Backward(saved.Qkv.Span, dContext.Span, batch, c.Heads, c.HeadDim, dQkv.Span, attention, l, threads);

            // qkv = a·Wᵀ + b, a being the previous layer's output (or the embeddings); a's gradient also takes ds by the skip connection.
            LayerInput(act, l, narrow.Span, threads);
            layer.Qkv.AccumulateGradients(dQkv.Span, narrow.Span, tokens, threads);
            layer.Qkv.InputGradient(dQkv.Span, tokens, dx, threads, residual: ds.Span);
        }

        if (act.Training) DropRows(dx, batch, Dropout.Hidden, DropoutSite.Embeddings, 0);
        EmbeddingNorm.Backward(dx, act.EmbeddingNormalized.Span, act.EmbeddingInverseStd.Span, tokens, ds.Span, threads);
        for (int s = 0; s < batch.Count; s++)
        {
            for (int t = batch.Offsets[s]; t < batch.Offsets[s + 1]; t++)
            {
                ReadOnlySpan<float> g = ds.Span.Slice(t * h, h);
                WordEmbeddings.AccumulateRow(batch.Ids[t], g);
                PositionEmbeddings.AccumulateRow(t - batch.Offsets[s], g);
                TypeEmbeddings.AccumulateRow(batch.TypeIds[t], g);
            }
        }
    }

    /// <summary>Recomputes layer <paramref name="l"/>'s input from the saved normalised rows.</summary>
    private void LayerInput(EncoderActivations act, int l, Span<float> input, int threads)
    {
        int tokens = act.Batch.Tokens;
        if (l > 0)
        {
            SavedLayer previous = act.Layers[l - 1];
            Layers[l - 1].OutputNorm.Output(previous.OutputNormalized.Span, tokens, input, threads);
            return;
        }
        EmbeddingNorm.Output(act.EmbeddingNormalized.Span, tokens, input, threads);
        if (act.Training) DropRows(input, act.Batch, Dropout.Hidden, DropoutSite.Embeddings, 0);
    }
}

/// <summary>Dropout probabilities as config.json names them (hidden_dropout_prob, attention_probs_dropout_prob,
/// classifier_dropout); all zero turns dropout off.</summary>
internal readonly record struct DropoutSettings(Dropout Hidden, Dropout Attention, Dropout Classifier)
{
    public static DropoutSettings None => new(new Dropout(0), new Dropout(0), new Dropout(0));
}

/// <summary>A forward pass's outputs and, when kept, what the backward pass needs. Rented buffers; dispose after use.</summary>
internal sealed class EncoderActivations : IDisposable
{
    private readonly PooledArray _hidden;

    public EncoderActivations(SequenceBatch batch, int tokens, int hidden, int keptLayers, int intermediate, bool training)
    {
        Batch = batch;
        Training = training;
        _hidden = new PooledArray(tokens * hidden);
        EmbeddingNormalized = new PooledArray(tokens * hidden);
        EmbeddingInverseStd = new PooledArray(tokens);
        Layers = new SavedLayer[keptLayers];
        for (int l = 0; l < keptLayers; l++) Layers[l] = new SavedLayer(tokens, hidden, intermediate);
    }

    public SequenceBatch Batch { get; }

    /// <summary>Whether dropout was applied (the backward pass regenerates the same masks).</summary>
    public bool Training { get; }

    /// <summary>The last hidden states, [tokens × hidden].</summary>
    public Span<float> Hidden => _hidden.Span;

    public PooledArray EmbeddingNormalized { get; }

    public PooledArray EmbeddingInverseStd { get; }

    public SavedLayer[] Layers { get; }

    public void Dispose()
    {
        _hidden.Dispose();
        EmbeddingNormalized.Dispose();
        EmbeddingInverseStd.Dispose();
        foreach (SavedLayer layer in Layers) layer.Dispose();
    }
}
