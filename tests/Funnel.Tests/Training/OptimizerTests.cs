using System.Text.Json;
using Funnel.Training;

namespace Funnel.Tests.Training;

/// <summary>AdamW, the schedule and gradient clipping against torch.optim.AdamW + LambdaLR + clip_grad_norm_
/// (the fixture's three steps), and the schedule's values by hand.</summary>
[Collection(TrainingReferenceCollection.Name)]
public class OptimizerTests(TrainingReference reference)
{
    [Fact]
    public void ThreeStepsEqualTorchAdamW()
    {
        JsonElement c = reference.Json.GetProperty("adamw");
        string[] names = c.GetProperty("names").Deserialize<string[]>()!;
        int[][] shapes = c.GetProperty("shapes").Deserialize<int[][]>()!;
        bool[] decay = c.GetProperty("decay").Deserialize<bool[]>()!;
        float[][] initial = c.GetProperty("initial").Deserialize<float[][]>()!;
        var parameters = names.Select((n, i) => new Parameter(n, shapes[i], (float[])initial[i].Clone(), decay[i])).ToList();
        var optimizer = new AdamW(parameters, c.GetProperty("weight_decay").GetDouble());
        double lr = c.GetProperty("lr").GetDouble();
        int warmup = c.GetProperty("warmup").GetInt32(), total = c.GetProperty("total").GetInt32();
        int step = 0;
        foreach (JsonElement s in c.GetProperty("steps").EnumerateArray())
        {
            float[][] grads = s.GetProperty("grads").Deserialize<float[][]>()!;
            for (int i = 0; i < parameters.Count; i++) grads[i].CopyTo(parameters[i].Grad, 0);
            float clip = AdamW.ClipCoefficient(parameters, c.GetProperty("max_grad_norm").GetDouble(), out double norm);
            Assert.Equal(s.GetProperty("norm").GetDouble(), norm, 1e-5 * norm);
            double rate = lr * LinearSchedule.Factor(step++, warmup, total);
            Assert.Equal(s.GetProperty("lr").GetDouble(), rate, 1e-12);
            optimizer.Step(rate, clip, threads: 2);
            float[][] expected = s.GetProperty("params").Deserialize<float[][]>()!;
            for (int i = 0; i < parameters.Count; i++)
                for (int j = 0; j < expected[i].Length; j++)
                    Assert.True(Math.Abs(expected[i][j] - parameters[i].Value[j]) <= 1e-6 * Math.Max(1, Math.Abs(expected[i][j])),
                        $"step {step}, {names[i]}[{j}]: {parameters[i].Value[j]} vs torch {expected[i][j]}");
        }
        Assert.Equal(3, optimizer.Steps);
    }

    [Fact]
    public void LinearScheduleByHand()
    {
        // 10 steps, 3 of warmup: 0, 1/3, 2/3, then 7/7 … 1/7.
        double[] expected = [0, 1 / 3.0, 2 / 3.0, 1, 6 / 7.0, 5 / 7.0, 4 / 7.0, 3 / 7.0, 2 / 7.0, 1 / 7.0];
        for (int s = 0; s < 10; s++) Assert.Equal(expected[s], LinearSchedule.Factor(s, 3, 10), 1e-15);
        Assert.Equal(3, LinearSchedule.WarmupSteps(0.25, 10)); // ceil(2.5)
        Assert.Equal(1.0, LinearSchedule.Factor(0, 0, 5));
    }

    [Fact]
    public void ClippingLeavesSmallGradientsAlone()
    {
        var p = new Parameter("w", [2], [0, 0], weightDecay: true);
        p.Grad[0] = 0.3f;
        p.Grad[1] = 0.4f;
        Assert.Equal(1f, AdamW.ClipCoefficient([p], 1.0, out double norm));
        Assert.Equal(0.5, norm, 1e-7);
        Assert.Equal(0.25 / (0.5 + 1e-6), AdamW.ClipCoefficient([p], 0.25, out _), 1e-7);
    }
}
