using System.Globalization;
using Funnel.Evaluation;
using Funnel.Training.Data;

namespace Funnel.Training;

/// <summary>The losses, by sentence-transformers' class names. Which apply depends on the <see cref="ModelKind"/>.</summary>
public enum TrainingLoss
{
    /// <summary>Bi-encoder: in-batch negatives plus any hard-negative columns, cosine × scale (20). Cross-encoder: the
    /// positive against hard negatives and sampled in-batch negatives, scale (10) · σ(logit).</summary>
    MultipleNegativesRankingLoss,
    /// <summary>The same with GradCache: the batch is embedded (scored) in mini-batches, so large batches fit in memory.</summary>
    CachedMultipleNegativesRankingLoss,
    /// <summary>Bi-encoder, scored pairs: log(1 + Σ exp(s_i − s_j)) over pairs ordered wrongly, s = 20 · cos.</summary>
    CoSENTLoss,
    /// <summary>Bi-encoder, scored pairs: mean (cos − label)², labels in [−1, 1].</summary>
    CosineSimilarityLoss,
    /// <summary>Bi-encoder distillation: (q·p − q·n) against a teacher's margin.</summary>
    MarginMSELoss,
    /// <summary>Cross-encoder: BCE with logits on labels in [0, 1], optional pos_weight.</summary>
    BinaryCrossEntropyLoss,
    /// <summary>Cross-encoder, listwise: cross-entropy of softmax(logits) against softmax(labels) per query.</summary>
    ListNetLoss,
}

/// <summary>What each loss needs from the data, checked before training so a bad file fails at once with its line and column.</summary>
internal static class LossRequirements
{
    public static bool AppliesTo(TrainingLoss loss, ModelKind kind) => loss switch
    {
        TrainingLoss.MultipleNegativesRankingLoss or TrainingLoss.CachedMultipleNegativesRankingLoss => true,
        TrainingLoss.CoSENTLoss or TrainingLoss.CosineSimilarityLoss or TrainingLoss.MarginMSELoss => kind == ModelKind.BiEncoder,
        _ => kind == ModelKind.CrossEncoder,
    };

    public static TrainingLoss Default(ModelKind kind, TrainingData data) => kind == ModelKind.BiEncoder
        ? data.LabelColumn != null && data.TextColumns.Count == 2 ? TrainingLoss.CoSENTLoss : TrainingLoss.MultipleNegativesRankingLoss
        : TrainingLoss.BinaryCrossEntropyLoss;

    /// <summary>Throws a <see cref="DatasetFormatException"/> naming the file, line and column of the first row the loss cannot use.</summary>
    public static void Validate(TrainingLoss loss, ModelKind kind, TrainingData data, bool teacher)
    {
        string file = data.Source;
        if (!AppliesTo(loss, kind))
            throw new ArgumentException($"{loss} does not train a {(kind == ModelKind.BiEncoder ? "bi-encoder" : "cross-encoder")} (losses for it: "
                                        + string.Join(", ", Enum.GetValues<TrainingLoss>().Where(l => AppliesTo(l, kind))) + ")");
        if (data.Count == 0) throw new DatasetFormatException(file, 0, "no training rows");
        bool labeled = data.LabelColumn != null;
        (int MinTexts, int? MaxTexts, string Shape, bool NeedsLabel) need = loss switch
        {
            TrainingLoss.CoSENTLoss or TrainingLoss.CosineSimilarityLoss => (2, 2, "(sentence1, sentence2) and a score", true),
            TrainingLoss.MarginMSELoss => (3, null, "(query, positive, negative…) and one teacher margin per negative", !teacher),
            TrainingLoss.BinaryCrossEntropyLoss when labeled => (2, 2, "(sentence1, sentence2) and a label", true),
            TrainingLoss.BinaryCrossEntropyLoss => (2, null, "(anchor, positive, negative…), or (sentence1, sentence2) with a label", false),
            TrainingLoss.ListNetLoss => (2, null, "(query, documents…) with one label per document, or (anchor, positive, negative…)", false),
            _ => (2, null, "(anchor, positive, negative…)", false),
        };
        if (need.NeedsLabel && !labeled)
            throw new DatasetFormatException(file, 0, $"{loss} needs {need.Shape}: no label column (name it 'label' or 'score'); columns are {string.Join(", ", data.TextColumns)}");
        bool variable = loss == TrainingLoss.ListNetLoss;
        int width = data.Examples[0].Texts.Count;
        foreach (TrainingExample e in data.Examples)
        {
            if (e.Texts.Count < need.MinTexts || e.Texts.Count > (need.MaxTexts ?? int.MaxValue))
                throw new DatasetFormatException(file, e.Line, $"{loss} needs {need.Shape}: this row has {e.Texts.Count} text{(e.Texts.Count == 1 ? "" : "s")} ({string.Join(", ", data.TextColumns)})");
            if (!variable && e.Texts.Count != width)
                throw new DatasetFormatException(file, e.Line, $"{e.Texts.Count} texts where the first row has {width}: every row needs the same columns");
            for (int t = 0; t < e.Texts.Count; t++)
                if (string.IsNullOrWhiteSpace(e.Texts[t]))
                    throw new DatasetFormatException(file, e.Line, $"column '{ColumnName(data, t)}': empty text");
            ValidateLabels(loss, data, e, need.NeedsLabel || (labeled && loss != TrainingLoss.MultipleNegativesRankingLoss && loss != TrainingLoss.CachedMultipleNegativesRankingLoss));
        }
    }

    private static void ValidateLabels(TrainingLoss loss, TrainingData data, TrainingExample e, bool used)
    {
        if (!used) return;
        string file = data.Source, column = data.LabelColumn ?? "label";
        int expected = loss switch
        {
            TrainingLoss.MarginMSELoss => e.Texts.Count - 2,
            TrainingLoss.ListNetLoss => e.Texts.Count - 1,
            _ => 1,
        };
        if (e.Labels.Count != expected)
            throw new DatasetFormatException(file, e.Line, $"column '{column}': {loss} needs {expected} label{(expected == 1 ? "" : "s")} for this row, found {e.Labels.Count}");
        (double Min, double Max, string Why) range = loss switch
        {
            TrainingLoss.BinaryCrossEntropyLoss => (0, 1, "BinaryCrossEntropyLoss takes targets in [0, 1]"),
            TrainingLoss.CosineSimilarityLoss => (-1, 1, "CosineSimilarityLoss compares with a cosine, in [-1, 1]"),
            _ => (double.MinValue, double.MaxValue, "labels must be finite"),
        };
        foreach (float label in e.Labels)
            if (!float.IsFinite(label) || label < range.Min || label > range.Max)
                throw new DatasetFormatException(file, e.Line, $"column '{column}': {label.ToString(CultureInfo.InvariantCulture)} is out of range ({range.Why})");
    }

    private static string ColumnName(TrainingData data, int text) =>
        text < data.TextColumns.Count ? data.TextColumns[text] : $"{data.TextColumns[^1]}[{text - data.TextColumns.Count + 1}]";
}
