using System.Text.Json;
using Funnel.Training.Losses;

namespace Funnel.Tests.Training;

/// <summary>Each loss's value and input gradient against sentence-transformers' formulas written in torch (the
/// fixture's "losses"), plus values checked by hand.</summary>
[Collection(TrainingReferenceCollection.Name)]
public class LossTests(TrainingReference reference)
{
    public static TheoryData<int> Cases => new() { 0, 1, 2, 3, 4, 5, 6, 7 };

    [Theory]
    [MemberData(nameof(Cases))]
    public void LossEqualsTheSentenceTransformersFormula(int index)
    {
        JsonElement c = reference.Json.GetProperty("losses")[index];
        string name = c.GetProperty("loss").GetString()!;
        JsonElement parameters = c.GetProperty("params");
        double Param(string key) => parameters.GetProperty(key).GetDouble();
        float[][]? labels = c.GetProperty("labels").ValueKind == JsonValueKind.Null ? null : c.GetProperty("labels").Deserialize<float[][]>();
        int batch = c.GetProperty("batch").GetInt32();
        double value;
        float[][] expected, actual;
        if (c.TryGetProperty("columns", out JsonElement cols))
        {
            float[][] columns = cols.Deserialize<float[][]>()!;
            EmbeddingLoss loss = name switch
            {
                "MultipleNegativesRankingLoss" => new MultipleNegativesRankingLoss(Param("scale")),
                "CoSENTLoss" => new CoSentLoss(Param("scale")),
                "CosineSimilarityLoss" => new CosineSimilarityLoss(),
                _ => new MarginMseLoss(),
            };
            Assert.Equal(name, loss.Name);
            actual = columns.Select(col => new float[col.Length]).ToArray();
            value = loss.Compute(columns, batch, c.GetProperty("dim").GetInt32(), labels, actual);
            expected = c.GetProperty("gradients").Deserialize<float[][]>()!;
        }
        else
        {
            float[] logits = TrainingReference.Floats(c.GetProperty("logits"));
            int docs = c.GetProperty("docs").GetInt32();
            (LogitLoss loss, List<int[]> groups) = name switch
            {
                "BinaryCrossEntropyLoss" => ((LogitLoss)new BinaryCrossEntropyLoss(Param("pos_weight")), Enumerable.Range(0, batch).Select(i => new[] { i * docs }).ToList()),
                "ListNetLoss" => (new ListNetLoss(), Enumerable.Range(0, batch).Select(i => Enumerable.Range(i * docs, docs).ToArray()).ToList()),
                _ => (new CrossEncoderRankingLoss(Param("scale")), Enumerable.Range(0, batch).Select(i => Enumerable.Range(i * docs, docs).ToArray()).ToList()),
            };
            var gradient = new float[logits.Length];
            value = loss.Compute(logits, groups, labels, gradient);
            actual = [gradient];
            expected = [TrainingReference.Floats(c.GetProperty("gradient"))];
        }
        Assert.Equal(c.GetProperty("value").GetDouble(), value, 1e-6 * Math.Max(1, Math.Abs(value)));
        double scale = expected.SelectMany(g => g).Max(Math.Abs);
        for (int k = 0; k < expected.Length; k++)
            for (int i = 0; i < expected[k].Length; i++)
                Assert.True(Math.Abs(expected[k][i] - actual[k][i]) <= 1e-6 * scale, $"{name} input {k}[{i}]: {actual[k][i]} vs {expected[k][i]}");
    }

    [Fact]
    public void MultipleNegativesRankingLossByHand()
    {
        // Two orthogonal anchors, each identical to its own positive: scores [[s, 0], [0, s]] → loss = log(1 + e^−s).
        float[][] columns = [[1, 0, 0, 1], [2, 0, 0, 3]];
        var gradients = new[] { new float[4], new float[4] };
        double loss = new MultipleNegativesRankingLoss(20).Compute(columns, 2, 2, null, gradients);
        Assert.Equal(Math.Log(1 + Math.Exp(-20)), loss, 1e-12);
    }

    [Fact]
    public void BinaryCrossEntropyByHand()
    {
        // logit 0: −log σ(0) = ln 2 whatever the label; pos_weight 3 weighs a positive three times.
        var g = new float[2];
        double loss = new BinaryCrossEntropyLoss(3).Compute([0f, 0f], [[0], [1]], [[1f], [0f]], g);
        Assert.Equal((3 * Math.Log(2) + Math.Log(2)) / 2, loss, 1e-12);
        Assert.Equal((0.5 * 3 - 3) / 2, g[0], 1e-7); // ((w·y + 1 − y)σ − w·y)/N
        Assert.Equal(0.5 / 2, g[1], 1e-7);
    }
}
