namespace Funnel.Training.Losses;

/// <summary>
/// A bi-encoder loss on the embeddings of a batch's text columns (sentence-transformers' <c>reps</c>): column c
/// holds the embeddings of every example's c-th text, [batch × dimension]. Computes the loss and its gradient
/// with respect to every embedding, in double precision.
/// </summary>
internal abstract class EmbeddingLoss
{
    /// <summary>sentence-transformers' class name.</summary>
    public abstract string Name { get; }

    public abstract double Compute(IReadOnlyList<float[]> columns, int batch, int dim, IReadOnlyList<float[]>? labels, IReadOnlyList<float[]> gradients);

    /// <summary>The loss on representations laid out column after column ([columns × batch × dim], as the
    /// bi-encoder's sequences are ordered), writing their gradient in the same layout.</summary>
    public double Compute(float[] representations, int columnCount, int batch, int dim, IReadOnlyList<float[]>? labels, float[] gradient)
    {
        int size = batch * dim;
        var columns = new float[columnCount][];
        var gradients = new float[columnCount][];
        for (int c = 0; c < columnCount; c++)
        {
            columns[c] = representations.AsSpan(c * size, size).ToArray();
            gradients[c] = new float[size];
        }
        double value = Compute(columns, batch, dim, labels, gradients);
        for (int c = 0; c < columnCount; c++) gradients[c].CopyTo(gradient, c * size);
        return value;
    }

    /// <summary>Rows scaled to unit L2 norm as torch's F.normalize (dividing by max(norm, 1e-12)), with their norms.</summary>
    protected static double[] Normalize(float[] rows, int count, int dim, out double[] norms)
    {
        var unit = new double[count * dim];
        norms = new double[count];
        for (int r = 0; r < count; r++)
        {
            double sq = 0;
            for (int d = 0; d < dim; d++) sq += (double)rows[r * dim + d] * rows[r * dim + d];
            norms[r] = Math.Max(Math.Sqrt(sq), 1e-12);
            for (int d = 0; d < dim; d++) unit[r * dim + d] = rows[r * dim + d] / norms[r];
        }
        return unit;
    }

    /// <summary>Adds d(rows) to <paramref name="gradient"/> given d(unit rows): (du − u·(u·du))/‖x‖.</summary>
    protected static void NormalizeBackward(double[] unit, double[] norms, double[] dUnit, int count, int dim, float[] gradient)
    {
        for (int r = 0; r < count; r++)
        {
            double dot = 0;
            for (int d = 0; d < dim; d++) dot += unit[r * dim + d] * dUnit[r * dim + d];
            for (int d = 0; d < dim; d++)
                gradient[r * dim + d] += (float)((dUnit[r * dim + d] - unit[r * dim + d] * dot) / norms[r]);
        }
    }

    protected static double Dot(double[] a, int i, double[] b, int j, int dim)
    {
        double sum = 0;
        for (int d = 0; d < dim; d++) sum += a[i * dim + d] * b[j * dim + d];
        return sum;
    }
}

/// <summary>
/// sentence-transformers' MultipleNegativesRankingLoss: scores = cos_sim(anchors, [positives; negatives…]) × scale,
/// cross-entropy with anchor i's target its own positive (column i), mean over anchors. Every other example's
/// positive and every negative column are the in-batch negatives.
/// </summary>
internal sealed class MultipleNegativesRankingLoss(double scale = 20) : EmbeddingLoss
{
    public override string Name => "MultipleNegativesRankingLoss";

    public double Scale { get; } = scale;

    public override double Compute(IReadOnlyList<float[]> columns, int batch, int dim, IReadOnlyList<float[]>? labels, IReadOnlyList<float[]> gradients)
    {
        if (columns.Count < 2) throw new ArgumentException($"{Name} needs (anchor, positive[, negatives…]) columns, got {columns.Count}", nameof(columns));
        int candidates = (columns.Count - 1) * batch;
        double[] anchors = Normalize(columns[0], batch, dim, out double[] anchorNorms);
        var unit = new double[columns.Count - 1][];
        var norms = new double[columns.Count - 1][];
        for (int c = 1; c < columns.Count; c++) unit[c - 1] = Normalize(columns[c], batch, dim, out norms[c - 1]);
        double Candidate(int j, int d) => unit[j / batch][j % batch * dim + d];

        var dAnchors = new double[batch * dim];
        var dCandidates = new double[columns.Count - 1][];
        for (int c = 0; c < dCandidates.Length; c++) dCandidates[c] = new double[batch * dim];
        var scores = new double[candidates];
        double loss = 0;
        for (int i = 0; i < batch; i++)
        {
            for (int j = 0; j < candidates; j++)
            {
                double dot = 0;
                for (int d = 0; d < dim; d++) dot += anchors[i * dim + d] * Candidate(j, d);
                scores[j] = Scale * dot;
            }
            double lse = LossMath.LogSumExp(scores);
            loss += lse - scores[i];
            for (int j = 0; j < candidates; j++)
            {
                // d loss / d score = (softmax − onehot) / batch, through the scale onto both unit vectors.
                double g = (Math.Exp(scores[j] - lse) - (j == i ? 1 : 0)) / batch * Scale;
                double[] dc = dCandidates[j / batch];
                int at = j % batch * dim;
                for (int d = 0; d < dim; d++)
                {
                    dAnchors[i * dim + d] += g * Candidate(j, d);
                    dc[at + d] += g * anchors[i * dim + d];
                }
            }
        }
        NormalizeBackward(anchors, anchorNorms, dAnchors, batch, dim, gradients[0]);
        for (int c = 1; c < columns.Count; c++) NormalizeBackward(unit[c - 1], norms[c - 1], dCandidates[c - 1], batch, dim, gradients[c]);
        return loss / batch;
    }
}

/// <summary>
/// sentence-transformers' CoSENTLoss: s_i = scale · cos(a_i, b_i); loss = log(1 + Σ over pairs with
/// label_i &lt; label_j of exp(s_i − s_j)).
/// </summary>
internal sealed class CoSentLoss(double scale = 20) : EmbeddingLoss
{
    public override string Name => "CoSENTLoss";

    public override double Compute(IReadOnlyList<float[]> columns, int batch, int dim, IReadOnlyList<float[]>? labels, IReadOnlyList<float[]> gradients)
    {
        double[] a = Normalize(columns[0], batch, dim, out double[] na), b = Normalize(columns[1], batch, dim, out double[] nb);
        var s = new double[batch];
        for (int i = 0; i < batch; i++) s[i] = scale * Dot(a, i, b, i, dim);
        var terms = new List<double> { 0 };
        for (int i = 0; i < batch; i++)
            for (int j = 0; j < batch; j++)
                if (labels![i][0] < labels[j][0]) terms.Add(s[i] - s[j]);
        double loss = LossMath.LogSumExp(terms.ToArray());
        var ds = new double[batch];
        for (int i = 0; i < batch; i++)
        {
            for (int j = 0; j < batch; j++)
            {
                if (!(labels![i][0] < labels[j][0])) continue;
                double w = Math.Exp(s[i] - s[j] - loss);
                ds[i] += w;
                ds[j] -= w;
            }
        }
        PairwiseCosineBackward(a, na, b, nb, ds, scale, batch, dim, gradients);
        return loss;
    }

    /// <summary>Gradients of the two columns from d(scale·cos(a_i, b_i)).</summary>
    internal static void PairwiseCosineBackward(double[] a, double[] na, double[] b, double[] nb, double[] ds, double scale, int batch, int dim,
        IReadOnlyList<float[]> gradients)
    {
        var da = new double[batch * dim];
        var db = new double[batch * dim];
        for (int i = 0; i < batch; i++)
            for (int d = 0; d < dim; d++)
            {
                da[i * dim + d] = ds[i] * scale * b[i * dim + d];
                db[i * dim + d] = ds[i] * scale * a[i * dim + d];
            }
        NormalizeBackward(a, na, da, batch, dim, gradients[0]);
        NormalizeBackward(b, nb, db, batch, dim, gradients[1]);
    }
}

/// <summary>sentence-transformers' CosineSimilarityLoss: mean over pairs of (cos(a_i, b_i) − label_i)².</summary>
internal sealed class CosineSimilarityLoss : EmbeddingLoss
{
    public override string Name => "CosineSimilarityLoss";

    public override double Compute(IReadOnlyList<float[]> columns, int batch, int dim, IReadOnlyList<float[]>? labels, IReadOnlyList<float[]> gradients)
    {
        double[] a = Normalize(columns[0], batch, dim, out double[] na), b = Normalize(columns[1], batch, dim, out double[] nb);
        var ds = new double[batch];
        double loss = 0;
        for (int i = 0; i < batch; i++)
        {
            double diff = Dot(a, i, b, i, dim) - labels![i][0];
            loss += diff * diff;
            ds[i] = 2 * diff / batch;
        }
        CoSentLoss.PairwiseCosineBackward(a, na, b, nb, ds, 1, batch, dim, gradients);
        return loss / batch;
    }
}

/// <summary>
/// sentence-transformers' MarginMSELoss with its default pairwise dot score: for each negative column k,
/// margin = q·p − q·n_k against the label (a teacher's margin); mean squared error over examples × negatives.
/// </summary>
internal sealed class MarginMseLoss : EmbeddingLoss
{
    public override string Name => "MarginMSELoss";

    public override double Compute(IReadOnlyList<float[]> columns, int batch, int dim, IReadOnlyList<float[]>? labels, IReadOnlyList<float[]> gradients)
    {
        int negatives = columns.Count - 2;
        if (negatives < 1) throw new ArgumentException($"{Name} needs (query, positive, negative…) columns, got {columns.Count}", nameof(columns));
        float[] q = columns[0], p = columns[1];
        double loss = 0;
        int count = batch * negatives;
        for (int i = 0; i < batch; i++)
        {
            double qp = 0;
            for (int d = 0; d < dim; d++) qp += (double)q[i * dim + d] * p[i * dim + d];
            for (int k = 0; k < negatives; k++)
            {
                float[] n = columns[2 + k];
                double qn = 0;
                for (int d = 0; d < dim; d++) qn += (double)q[i * dim + d] * n[i * dim + d];
                double diff = qp - qn - labels![i][k];
                loss += diff * diff;
                double g = 2 * diff / count;
                for (int d = 0; d < dim; d++)
                {
                    gradients[0][i * dim + d] += (float)(g * (p[i * dim + d] - n[i * dim + d]));
                    gradients[1][i * dim + d] += (float)(g * q[i * dim + d]);
                    gradients[2 + k][i * dim + d] -= (float)(g * q[i * dim + d]);
                }
            }
        }
        return loss / count;
    }
}
