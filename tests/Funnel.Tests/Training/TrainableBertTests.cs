using Funnel.Inference;
using Funnel.Training;
using Funnel.Training.Losses;

namespace Funnel.Tests.Training;

[Collection(TrainingReferenceCollection.Name)]
public class TrainableBertTests(TrainingReference reference)
{
    private static readonly string[] Texts =
    [
        "This is an example sentence", "Each sentence is converted.", "Berlin is well known for its museums.",
        "How many people live in Berlin?", "a", "Metoprolol succinate is also known by the brand name Toprol XL.",
    ];

    [Fact]
    public void WithoutDropoutTheForwardPassIsTheInferenceEncoderBitForBit()
    {
        TrainingModel model = TrainingReference.Load(reference.BiEncoderDir, ModelKind.BiEncoder);
        using var encoder = SentenceEncoder.Load(reference.BiEncoderDir);
        TokenSequence[] inputs = Texts.Select(model.EncodeText).ToArray();
        float[][] expected = encoder.EncodeTokens(inputs);
        foreach (bool keep in new[] { true, false })
        {
            float[] reps = GradientPass.Represent(model, inputs, new ulong[inputs.Length], training: false, chunk: keep ? 100 : 2, threads: 2, CancellationToken.None);
            for (int i = 0; i < inputs.Length; i++) Assert.Equal(expected[i], reps.AsSpan(i * model.Head.Dimension, model.Head.Dimension).ToArray());
        }
        SequenceBatch batch = SequenceBatch.Create(inputs, new ulong[inputs.Length]);
        using EncoderActivations act = model.Encoder.Forward(batch, training: false, keep: true, threads: 1, CancellationToken.None);
        Assert.Equal(encoder.HiddenStates(inputs[2]), act.Hidden.Slice(batch.Offsets[2] * 32, batch.Lengths[2] * 32).ToArray());
    }

    [Fact]
    public void WithoutDropoutTheCrossEncoderGivesTheInferenceLogits()
    {
        TrainingModel model = TrainingReference.Load(reference.CrossEncoderDir, ModelKind.CrossEncoder);
        using var encoder = CrossEncoder.Load(reference.CrossEncoderDir, new EncoderOptions { Activation = ScoreActivation.Identity });
        TokenSequence[] pairs = Texts.Skip(1).Select(t => model.EncodePair(Texts[0], t)).ToArray();
        float[] logits = GradientPass.Represent(model, pairs, new ulong[pairs.Length], false, 3, 2, CancellationToken.None);
        Assert.Equal(encoder.ScoreTokens(pairs), logits);
    }

    [Fact]
    public void DropoutChangesTheOutputReproduciblyPerSequenceKey()
    {
        TrainingModel model = TrainingModel.Load(reference.BiEncoderDir, ModelKind.BiEncoder, dropout: true, maxLength: null, seed: 0);
        TokenSequence[] inputs = Texts.Select(model.EncodeText).ToArray();
        ulong[] keys = inputs.Select((_, i) => (ulong)i + 1).ToArray();
        float[] a = GradientPass.Represent(model, inputs, keys, training: true, chunk: 100, threads: 2, CancellationToken.None);
        float[] b = GradientPass.Represent(model, inputs.Reverse().ToArray(), keys.Reverse().ToArray(), training: true, chunk: 1, threads: 1, CancellationToken.None);
        float[] off = GradientPass.Represent(model, inputs, keys, training: false, chunk: 100, threads: 2, CancellationToken.None);
        int d = model.Head.Dimension;
        for (int i = 0; i < inputs.Length; i++)
            Assert.Equal(a.AsSpan(i * d, d).ToArray(), b.AsSpan((inputs.Length - 1 - i) * d, d).ToArray()); // same key, same masks, any batch
        Assert.NotEqual(a, off);
    }

    [Fact]
    public void GradCacheGivesTheGradientOfTheWholeBatch()
    {
        TrainingModel whole = TrainingModel.Load(reference.BiEncoderDir, ModelKind.BiEncoder, dropout: true, maxLength: null, seed: 0);
        TrainingModel cached = TrainingModel.Load(reference.BiEncoderDir, ModelKind.BiEncoder, dropout: true, maxLength: null, seed: 0);
        TokenSequence[] inputs = Texts.Select(whole.EncodeText).ToArray();
        ulong[] keys = inputs.Select((_, i) => (ulong)(i * 31 + 7)).ToArray();
        var loss = new MultipleNegativesRankingLoss();
        double Run(TrainingModel model, int? chunk) => GradientPass.Run(model, inputs, keys,
            (reps, dReps) => loss.Compute(reps, 2, 3, model.Head.Dimension, null, dReps), new PassSettings(true, chunk, 0.5f, 2), CancellationToken.None);
        double a = Run(whole, null), b = Run(cached, 2);
        Assert.Equal(a, b, 1e-12);
        foreach (var (p, q) in whole.Parameters.Zip(cached.Parameters))
        {
            double norm = Math.Sqrt(p.Grad.Sum(g => (double)g * g)), error = Math.Sqrt(p.Grad.Zip(q.Grad, (x, y) => ((double)x - y) * (x - y)).Sum());
            Assert.True(error <= 1e-5 * norm + 1e-9, $"{p.Name}: cached gradient differs by {error:E2} (‖g‖ {norm:E2})");
        }
    }

    /// <summary>Central differences of the whole model's loss (fp32 forward) against the backward pass, on the
    /// entries with the largest gradients of a few tensors.</summary>
    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        TrainingModel model = TrainingReference.Load(reference.CrossEncoderDir, ModelKind.CrossEncoder);
        TokenSequence[] pairs = Texts.Skip(1).Select(t => model.EncodePair(Texts[0], t)).ToArray();
        float[] labels = [1, 0, 0.5f, 1, 0];
        var loss = new BinaryCrossEntropyLoss(1.5);
        var groups = pairs.Select((_, i) => new[] { i }).ToList();
        var labelRows = labels.Select(l => new[] { l }).ToList();
        double Loss(bool backward) => backward
            ? GradientPass.Run(model, pairs, new ulong[pairs.Length], (reps, d) => loss.Compute(reps, groups, labelRows, d), new PassSettings(false, null, 1, 2), CancellationToken.None)
            : loss.Compute(GradientPass.Represent(model, pairs, new ulong[pairs.Length], false, 100, 2, CancellationToken.None), groups, labelRows, new float[pairs.Length]);
        Loss(backward: true);
        string[] names = ["embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.qkv.weight", "encoder.layer.1.intermediate.dense.bias",
            "encoder.layer.1.output.LayerNorm.weight", "pooler.dense.weight", "classifier.bias"];
        foreach (string name in names)
        {
            Parameter p = model.Parameters.Single(q => q.Name == name);
            int[] largest = Enumerable.Range(0, p.Grad.Length).OrderByDescending(i => Math.Abs(p.Grad[i])).Take(3).ToArray();
            foreach (int i in largest)
            {
                float keep = p.Value[i], h = 2e-3f;
                p.Value[i] = keep + h;
                model.Repack();
                double up = Loss(false);
                p.Value[i] = keep - h;
                model.Repack();
                double down = Loss(false);
                p.Value[i] = keep;
                model.Repack();
                double fd = (up - down) / (2 * h);
                Assert.True(Math.Abs(fd - p.Grad[i]) <= 0.02 * Math.Abs(p.Grad[i]) + 2e-4, $"{name}[{i}]: backward {p.Grad[i]}, finite difference {fd}");
            }
        }
    }
}
