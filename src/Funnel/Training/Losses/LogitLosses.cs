namespace Funnel.Training.Losses;

/// <summary>
/// A cross-encoder loss on the logits of a batch's (query, document) pairs. <c>groups[i]</c> lists example i's
/// pairs (indices into the logits) in the loss's order, <c>labels[i]</c> one label per pair of the group where the
/// loss takes labels. Computes the loss and d(loss)/d(logit), in double precision.
/// </summary>
internal abstract class LogitLoss
{
    public abstract string Name { get; }

    public abstract double Compute(ReadOnlySpan<float> logits, IReadOnlyList<int[]> groups, IReadOnlyList<float[]>? labels, Span<float> gradient);
}

/// <summary>
/// sentence-transformers' cross-encoder BinaryCrossEntropyLoss: torch's BCEWithLogitsLoss (mean over pairs) on the
/// raw logits, the positive term weighted by <c>pos_weight</c>:
/// l = −[w·y·log σ(x) + (1 − y)·log(1 − σ(x))], in its overflow-free form.
/// </summary>
internal sealed class BinaryCrossEntropyLoss(double posWeight = 1) : LogitLoss
{
    public override string Name => "BinaryCrossEntropyLoss";

    public double PosWeight { get; } = posWeight;

    public override double Compute(ReadOnlySpan<float> logits, IReadOnlyList<int[]> groups, IReadOnlyList<float[]>? labels, Span<float> gradient)
    {
        int count = groups.Sum(g => g.Length);
        double loss = 0;
        for (int i = 0; i < groups.Count; i++)
        {
            for (int k = 0; k < groups[i].Length; k++)
            {
                int at = groups[i][k];
                double x = logits[at], y = labels![i][k];
                // (1 − y)·x + (1 + (w − 1)·y)·log(1 + e^−x), with log(1 + e^−x) = log(1 + e^−|x|) + max(−x, 0).
                double softplus = Math.Log(1 + Math.Exp(-Math.Abs(x))) + Math.Max(-x, 0);
                loss += (1 - y) * x + (1 + (PosWeight - 1) * y) * softplus;
                gradient[at] += (float)(((PosWeight * y + 1 - y) * LossMath.Sigmoid(x) - PosWeight * y) / count);
            }
        }
        return loss / count;
    }
}

/// <summary>
/// sentence-transformers' cross-encoder MultipleNegativesRankingLoss: each group is (positive, negatives…);
/// scores = scale · σ(logits), cross-entropy with the positive (position 0) as target, mean over groups.
/// </summary>
internal sealed class CrossEncoderRankingLoss(double scale = 10) : LogitLoss
{
    public override string Name => "MultipleNegativesRankingLoss";

    public override double Compute(ReadOnlySpan<float> logits, IReadOnlyList<int[]> groups, IReadOnlyList<float[]>? labels, Span<float> gradient)
    {
        double loss = 0;
        foreach (int[] group in groups)
        {
            var scores = new double[group.Length];
            for (int k = 0; k < group.Length; k++) scores[k] = scale * LossMath.Sigmoid(logits[group[k]]);
            double lse = LossMath.LogSumExp(scores);
            loss += lse - scores[0];
            for (int k = 0; k < group.Length; k++)
            {
                double sig = LossMath.Sigmoid(logits[group[k]]);
                double dScore = (Math.Exp(scores[k] - lse) - (k == 0 ? 1 : 0)) / groups.Count;
                gradient[group[k]] += (float)(dScore * scale * sig * (1 - sig));
            }
        }
        return loss / groups.Count;
    }
}

/// <summary>
/// sentence-transformers' ListNetLoss: for each query, cross-entropy between softmax(labels) and softmax(logits)
/// over its documents, mean over queries.
/// </summary>
internal sealed class ListNetLoss : LogitLoss
{
    public override string Name => "ListNetLoss";

    public override double Compute(ReadOnlySpan<float> logits, IReadOnlyList<int[]> groups, IReadOnlyList<float[]>? labels, Span<float> gradient)
    {
        double loss = 0;
        for (int i = 0; i < groups.Count; i++)
        {
            int[] group = groups[i];
            var x = new double[group.Length];
            var y = new double[group.Length];
            for (int k = 0; k < group.Length; k++)
            {
                x[k] = logits[group[k]];
                y[k] = labels![i][k];
            }
            double lx = LossMath.LogSumExp(x), ly = LossMath.LogSumExp(y);
            for (int k = 0; k < group.Length; k++)
            {
                double target = Math.Exp(y[k] - ly);
                loss -= target * (x[k] - lx);
                gradient[group[k]] += (float)((Math.Exp(x[k] - lx) - target) / groups.Count);
            }
        }
        return loss / groups.Count;
    }
}
