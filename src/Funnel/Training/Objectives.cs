using Funnel.Inference;
using Funnel.Training.Data;
using Funnel.Training.Losses;

namespace Funnel.Training;

/// <summary>Where in the run a micro-batch is: its dropout keys and samples derive from these.</summary>
internal readonly record struct StepPosition(ulong Seed, int Step, int MicroStep)
{
    public ulong SequenceKey(int index) => SeededRandom.Key(Seed, "dropout", Step, MicroStep, index);

    public SeededRandom Random(string purpose) => SeededRandom.For(Seed, purpose, Step, MicroStep);
}

/// <summary>
/// A loss applied to a micro-batch of training rows: it turns the rows into the sequences the model encodes, runs
/// the forward and backward pass, and returns the loss and the number of tokens and sequences encoded.
/// </summary>
internal abstract class Objective
{
    public abstract (double Loss, long Tokens, int Sequences) Run(TrainingModel model, IReadOnlyList<TrainingExample> batch, StepPosition position, PassSettings settings,
        CancellationToken ct);

    protected static (double, long, int) Pass(TrainingModel model, TokenSequence[] sequences, StepPosition position, Func<float[], float[], double> loss,
        PassSettings settings, CancellationToken ct)
    {
        ulong[] keys = Enumerable.Range(0, sequences.Length).Select(position.SequenceKey).ToArray();
        double value = GradientPass.Run(model, sequences, keys, loss, settings, ct);
        return (value, sequences.Sum(s => (long)s.Ids.Length), sequences.Length);
    }

    protected static TokenSequence[] Tokenize(int count, Func<int, TokenSequence> encode, int threads, CancellationToken ct)
    {
        var result = new TokenSequence[count];
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = ct }, i => result[i] = encode(i));
        return result;
    }

    public static Objective Create(TrainingLoss loss, ModelKind kind, TrainingParameters p, Func<IReadOnlyList<(string, string)>, float[]>? teacher) =>
        (loss, kind) switch
        {
            (TrainingLoss.MultipleNegativesRankingLoss or TrainingLoss.CachedMultipleNegativesRankingLoss, ModelKind.BiEncoder) =>
                new EmbeddingObjective(new MultipleNegativesRankingLoss(p.Scale ?? 20), null),
            (TrainingLoss.CoSENTLoss, _) => new EmbeddingObjective(new CoSentLoss(p.Scale ?? 20), null),
            (TrainingLoss.CosineSimilarityLoss, _) => new EmbeddingObjective(new CosineSimilarityLoss(), null),
            (TrainingLoss.MarginMSELoss, _) => new EmbeddingObjective(new MarginMseLoss(), teacher),
            (TrainingLoss.BinaryCrossEntropyLoss, _) => new PairObjective(new BinaryCrossEntropyLoss(p.PosWeight ?? 1), 0),
            (TrainingLoss.ListNetLoss, _) => new PairObjective(new ListNetLoss(), 0),
            _ => new PairObjective(new CrossEncoderRankingLoss(p.Scale ?? 10), p.InBatchNegatives),
        };
}

/// <summary>A bi-encoder loss: every text of the batch is embedded, column after column (sentence-transformers' reps).
/// MarginMSE's labels come from the rows or, with a teacher, from the teacher's score margins.</summary>
internal sealed class EmbeddingObjective(EmbeddingLoss loss, Func<IReadOnlyList<(string, string)>, float[]>? teacher) : Objective
{
    public override (double Loss, long Tokens, int Sequences) Run(TrainingModel model, IReadOnlyList<TrainingExample> batch, StepPosition position, PassSettings settings,
        CancellationToken ct)
    {
        int b = batch.Count, columns = batch[0].Texts.Count;
        TokenSequence[] sequences = Tokenize(b * columns, i => model.EncodeText(batch[i % b].Texts[i / b]), settings.Threads, ct);
        IReadOnlyList<float[]> labels = teacher == null ? batch.Select(e => e.Labels.ToArray()).ToList() : TeacherMargins(batch);
        return Pass(model, sequences, position, (reps, d) => loss.Compute(reps, columns, b, model.Head.Dimension, labels, d), settings, ct);
    }

    /// <summary>teacher(q, p) − teacher(q, n_k) per negative.</summary>
    private List<float[]> TeacherMargins(IReadOnlyList<TrainingExample> batch)
    {
        var pairs = batch.SelectMany(e => e.Texts.Skip(1).Select(t => (e.Texts[0], t))).ToList();
        float[] scores = teacher!(pairs);
        var margins = new List<float[]>(batch.Count);
        int at = 0;
        foreach (TrainingExample e in batch)
        {
            float positive = scores[at];
            margins.Add(scores.AsSpan(at + 1, e.Texts.Count - 2).ToArray().Select(n => positive - n).ToArray());
            at += e.Texts.Count - 1;
        }
        return margins;
    }
}

/// <summary>
/// A cross-encoder loss on (anchor, document) pairs. Each row becomes a group of pairs: (sentence1, sentence2) with
/// its label; or the anchor with each later text, labelled 1 for the first and 0 for the rest (sentence-transformers'
/// "labeled-pair" / "labeled-list" forms); ListNet takes the row's own labels. With <paramref name="inBatchNegatives"/>
/// (MultipleNegativesRankingLoss) each group is the positive, that many documents of other rows sampled without
/// replacement, then the row's hard negatives, as sentence-transformers orders them.
/// </summary>
internal sealed class PairObjective(LogitLoss loss, int inBatchNegatives) : Objective
{
    public override (double Loss, long Tokens, int Sequences) Run(TrainingModel model, IReadOnlyList<TrainingExample> batch, StepPosition position, PassSettings settings,
        CancellationToken ct)
    {
        var pairs = new List<(string A, string B)>();
        var groups = new List<int[]>();
        var labels = new List<float[]>();
        SeededRandom random = position.Random("in-batch negatives");
        for (int i = 0; i < batch.Count; i++)
        {
            TrainingExample e = batch[i];
            var docs = new List<string> { e.Texts[1] };
            if (inBatchNegatives > 0)
            {
                // Candidates: every document of every other row (sentence-transformers masks the row's own columns).
                var others = batch.Where((_, j) => j != i).SelectMany(o => o.Texts.Skip(1)).ToList();
                docs.AddRange(random.Sample(others, inBatchNegatives));
            }
            docs.AddRange(e.Texts.Skip(2));
            int first = pairs.Count;
            pairs.AddRange(docs.Select(d => (e.Texts[0], d)));
            groups.Add(Enumerable.Range(first, docs.Count).ToArray());
            labels.Add(e.Labels.Count == docs.Count ? e.Labels.ToArray() : docs.Select((_, k) => k == 0 ? 1f : 0f).ToArray());
        }
        TokenSequence[] sequences = Tokenize(pairs.Count, i => model.EncodePair(pairs[i].A, pairs[i].B), settings.Threads, ct);
        return Pass(model, sequences, position, (logits, d) => loss.Compute(logits, groups, labels, d), settings, ct);
    }
}
