using System.Text.Json;
using Xunit.Abstractions;
using Funnel.Inference;
using Funnel.Training;
using Funnel.Training.Losses;

namespace Funnel.Tests.Training;

/// <summary>
/// Every parameter's gradient against PyTorch autograd (float64, dropout off) on the seeded small BERT, through
/// the whole model: embeddings, every layer, the head and the loss. Per tensor, ‖ours − torch‖ ≤ 1e-4·‖torch‖;
/// a tensor whose true gradient vanishes (the key biases: softmax ignores a constant added to a row of scores)
/// must come out below 1e-6 of the largest gradient norm instead.
/// </summary>
[Collection(TrainingReferenceCollection.Name)]
public class GradientParityTests(TrainingReference reference, ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    [Fact]
    public void BiEncoderGradientsMatchTorch()
    {
        JsonElement c = reference.Json.GetProperty("bi_encoder");
        TrainingModel model = TrainingReference.Load(reference.BiEncoderDir, ModelKind.BiEncoder);
        Assert.Equal(PoolingMode.Cls | PoolingMode.Max | PoolingMode.Mean, model.Pooling!.Mode);
        int[][][] columns = c.GetProperty("columns").Deserialize<int[][][]>()!;
        int batch = columns[0].Length;
        var sequences = columns.SelectMany(col => col.Select(ids => new TokenSequence(ids, new int[ids.Length]))).ToList();
        var loss = new MultipleNegativesRankingLoss(c.GetProperty("scale").GetDouble());
        double value = GradientPass.Run(model, sequences, new ulong[sequences.Count],
            (reps, dReps) => loss.Compute(reps, columns.Length, batch, model.Pooling.Dimension, null, dReps),
            new PassSettings(Training: false, MiniBatchSize: null, LossScale: 1, Threads: 2), CancellationToken.None);

        Assert.Equal(c.GetProperty("value").GetDouble(), value, 1e-5);
        output.WriteLine(AssertGradients(model, c.GetProperty("gradients")));
    }

    [Fact]
    public void CrossEncoderGradientsMatchTorch()
    {
        JsonElement c = reference.Json.GetProperty("cross_encoder");
        TrainingModel model = TrainingReference.Load(reference.CrossEncoderDir, ModelKind.CrossEncoder);
        Assert.Equal("pooler from the base, classifier from the base", model.Initialization);
        int[][] ids = c.GetProperty("ids").Deserialize<int[][]>()!, types = c.GetProperty("type_ids").Deserialize<int[][]>()!;
        float[] labels = TrainingReference.Floats(c.GetProperty("labels"));
        var sequences = ids.Select((s, i) => new TokenSequence(s, types[i])).ToList();
        var loss = new BinaryCrossEntropyLoss(c.GetProperty("pos_weight").GetDouble());
        float[] logits = [];
        double value = GradientPass.Run(model, sequences, new ulong[sequences.Count], (reps, dReps) =>
        {
            logits = reps;
            return loss.Compute(reps, sequences.Select((_, i) => new[] { i }).ToList(), labels.Select(l => new[] { l }).ToList(), dReps);
        }, new PassSettings(false, null, 1, 2), CancellationToken.None);

        float[] expectedLogits = TrainingReference.Floats(c.GetProperty("logits"));
        for (int i = 0; i < logits.Length; i++) Assert.Equal(expectedLogits[i], logits[i], 1e-5f);
        Assert.Equal(c.GetProperty("value").GetDouble(), value, 1e-5);
        output.WriteLine(AssertGradients(model, c.GetProperty("gradients")));
    }

    /// <summary>Compares every tensor of the fixture with the model's gradient (QKV split back into query, key and
    /// value); sparse tables must have gradient rows exactly where the fixture lists them.</summary>
    internal static string AssertGradients(TrainingModel model, JsonElement expected)
    {
        var byName = model.Parameters.ToDictionary(p => p.Name);
        var tensors = new List<(string Name, float[] Expected, float[] Actual)>();
        foreach (JsonProperty t in expected.EnumerateObject())
        {
            string name = t.Name;
            if (name.StartsWith("pooler.", StringComparison.Ordinal) && model.Kind == ModelKind.BiEncoder)
            {
                Assert.All(TrainingReference.Floats(t.Value.GetProperty("values")), g => Assert.Equal(0f, g)); // unused by the embedding
                continue;
            }
            if (t.Value.TryGetProperty("rows", out JsonElement rows))
            {
                Parameter p = byName[name];
                int[] expectedRows = rows.Deserialize<int[]>()!;
                float[][] values = t.Value.GetProperty("values").Deserialize<float[][]>()!;
                int w = p.RowWidth;
                var touched = p.TouchedRows!.ToHashSet();
                Assert.True(touched.IsSubsetOf(expectedRows), $"{name}: gradient rows outside the fixture's");
                tensors.Add((name, values.SelectMany(v => v).ToArray(), expectedRows.SelectMany(r => p.Grad.AsSpan(r * w, w).ToArray()).ToArray()));
                continue;
            }
            tensors.Add((name, TrainingReference.Floats(t.Value.GetProperty("values")), Actual(byName, name)));
        }
        double largest = tensors.Max(t => Norm(t.Expected)), worst = 0;
        string worstName = "";
        foreach (var (name, exp, act) in tensors)
        {
            Assert.Equal(exp.Length, act.Length);
            double norm = Norm(exp), error = Math.Sqrt(exp.Zip(act, (e, a) => ((double)e - a) * ((double)e - a)).Sum());
            if (norm <= 1e-9 * largest)
                Assert.True(error <= 1e-6 * largest, $"{name}: gradient should vanish, ‖ours‖ = {error:E2} (largest tensor gradient {largest:E2})");
            else
                Assert.True(error <= Tolerance * norm, $"{name}: relative error {error / norm:E2} (‖torch‖ = {norm:E3})");
            if (norm > 1e-9 * largest && error / norm > worst) (worst, worstName) = (error / norm, name);
        }
        return $"{tensors.Count} tensors; largest relative error {worst:E2} ({worstName})";
    }

    private static float[] Actual(Dictionary<string, Parameter> byName, string name)
    {
        string[] parts = ["query", "key", "value"];
        foreach (string part in parts)
        {
            string marker = $".attention.self.{part}.";
            int at = name.IndexOf(marker, StringComparison.Ordinal);
            if (at < 0) continue;
            string suffix = name[(at + marker.Length)..];
            Parameter fused = byName[name[..at] + "." + TrainableBert.QkvName + "." + suffix];
            int third = fused.Value.Length / 3, index = Array.IndexOf(parts, part);
            return fused.Grad.AsSpan(index * third, third).ToArray();
        }
        return byName[name].Grad;
    }

    private static double Norm(float[] values) => Math.Sqrt(values.Sum(v => (double)v * v));
}
