using System.Numerics.Tensors;
using System.Text.Json;
using Funnel.Inference;
using Funnel.Training;
using Funnel.Training.Data;
using Funnel.Training.Evaluation;

namespace Funnel.Tests.Training;

/// <summary>Short runs on a toy task with small seeded models: the loss falls and the model learns, runs are
/// reproducible, an interrupted run resumes to the same weights, and the output folder loads for inference.</summary>
[Collection(TrainingReferenceCollection.Name)]
public sealed class TrainerTests(TrainingReference reference) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("funnel-trainer-").FullName;

    /// <summary>An arbitrary pairing of common words: nothing but training relates the two sides.</summary>
    private static readonly (string A, string B)[] Pairs =
    [
        ("apple", "river"), ("house", "green"), ("music", "window"), ("paper", "mountain"), ("chair", "coffee"), ("horse", "silver"),
        ("bread", "summer"), ("phone", "island"), ("table", "winter"), ("light", "forest"), ("water", "doctor"), ("money", "garden"),
        ("train", "yellow"), ("stone", "market"), ("cloud", "school"), ("glass", "engine"), ("shirt", "valley"), ("dream", "bridge"),
        ("plant", "castle"), ("sugar", "letter"),
    ];

    private static TrainingData ToyPairs() =>
        new("toy", ["anchor", "positive"], null, Pairs.Select(p => new TrainingExample([p.A, p.B], [])).ToList());

    private TrainingJob Job(string name, TrainingData data, ModelKind kind = ModelKind.BiEncoder, string? baseDir = null) => new()
    {
        Kind = kind,
        BaseModel = baseDir ?? reference.BiEncoderDir,
        OutputDir = Path.Combine(_root, name),
        Data = data,
        Parameters = new TrainingParameters { BatchSize = 8, LearningRate = 3e-3, Epochs = 40, WarmupRatio = 0.1, Seed = 5 },
        Threads = 2,
        SaveSteps = 1000,
    };

    private static double Accuracy(string modelDir)
    {
        using var encoder = SentenceEncoder.Load(modelDir);
        float[][] a = encoder.Encode(Pairs.Select(p => p.A).ToList()), b = encoder.Encode(Pairs.Select(p => p.B).ToList());
        int right = 0;
        for (int i = 0; i < a.Length; i++)
        {
            int best = Enumerable.Range(0, b.Length).MaxBy(j => TensorPrimitives.Dot(a[i], b[j]));
            if (best == i) right++;
        }
        return right / (double)a.Length;
    }

    [Fact]
    public void ToyTaskLossFallsAndTheModelLearnsIt()
    {
        var losses = new List<double>();
        TrainingResult result = Trainer.Run(Job("toy", ToyPairs()), new SyncProgress(p => { if (p.Event == null) losses.Add(p.Loss); }));
        Assert.Equal(120, result.Steps); // 20 rows / 8 → 3 batches × 40 epochs
        Assert.True(losses.TakeLast(10).Average() < 0.5 * losses.Take(10).Average(), $"loss {losses.Take(10).Average():F3} → {losses.TakeLast(10).Average():F3}");
        Assert.True(Accuracy(reference.BiEncoderDir) <= 0.3, "the task should not be solved before training");
        Assert.True(Accuracy(result.OutputDir) >= 0.9, $"accuracy@1 after training {Accuracy(result.OutputDir):F2}");
    }

    [Fact]
    public void SameSeedAndThreadsGiveBitIdenticalWeights()
    {
        TrainingJob a = Job("same-a", ToyPairs()) with { Parameters = Job("", ToyPairs()).Parameters with { Epochs = 2 } };
        Trainer.Run(a);
        Trainer.Run(a with { OutputDir = Path.Combine(_root, "same-b") });
        Assert.Equal(File.ReadAllBytes(Path.Combine(_root, "same-a", "model.safetensors")), File.ReadAllBytes(Path.Combine(_root, "same-b", "model.safetensors")));
        Trainer.Run(a with { OutputDir = Path.Combine(_root, "same-c"), Parameters = a.Parameters with { Seed = 6 } });
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(_root, "same-a", "model.safetensors")), File.ReadAllBytes(Path.Combine(_root, "same-c", "model.safetensors")));
    }

    [Fact]
    public void AnInterruptedRunResumesToTheSameWeights()
    {
        TrainingJob job = Job("straight", ToyPairs()) with { Parameters = Job("", ToyPairs()).Parameters with { Epochs = 3 }, SaveSteps = 2 };
        Trainer.Run(job);
        TrainingJob interrupted = job with { OutputDir = Path.Combine(_root, "interrupted") };
        using var cancel = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => Trainer.Run(interrupted, new SyncProgress(p => { if (p.Step == 5) cancel.Cancel(); }), cancel.Token));
        string state = File.ReadAllText(Path.Combine(interrupted.OutputDir, Trainer.RunFolder, "state.json"));
        Assert.Equal(5, JsonDocument.Parse(state).RootElement.GetProperty("step").GetInt32());
        int resumedAt = -1;
        Trainer.Run(interrupted with { Resume = true }, new SyncProgress(p => { if (p.Event == null && resumedAt < 0) resumedAt = p.Step; }));
        Assert.Equal(6, resumedAt);
        Assert.Equal(File.ReadAllBytes(Path.Combine(job.OutputDir, "model.safetensors")), File.ReadAllBytes(Path.Combine(interrupted.OutputDir, "model.safetensors")));
    }

    [Fact]
    public void AnOutputFolderIsOnlyReusedByTheSameJob()
    {
        string other = Path.Combine(_root, "other");
        Directory.CreateDirectory(other);
        File.WriteAllText(Path.Combine(other, "notes.txt"), "mine");
        TrainingJob job = Job("reuse", ToyPairs()) with { Parameters = new TrainingParameters { BatchSize = 8, Epochs = 1 } };
        var e = Assert.Throws<OutputFolderException>(() => Trainer.Run(job with { OutputDir = other }));
        Assert.Contains("is not a Funnel training run", e.Message);
        Trainer.Run(job);
        e = Assert.Throws<OutputFolderException>(() => Trainer.Run(job with { Parameters = job.Parameters with { LearningRate = 1e-4 } }));
        Assert.Contains("lr: 2E-05 → 0.0001", e.Message);
        Trainer.Run(job with { Resume = true }); // the same job: fine
    }

    [Fact]
    public void ALossThatBecomesInfiniteStopsTheRunAndKeepsTheLastGoodCheckpoint()
    {
        var scored = new TrainingData("scored", ["sentence1", "sentence2"], "score",
            Pairs.Select((p, i) => new TrainingExample([p.A, p.B], [i % 3 / 2f])).ToList());
        TrainingJob job = Job("diverge", scored) with { Parameters = new TrainingParameters { Loss = TrainingLoss.CoSENTLoss, Scale = 1e300, BatchSize = 8 } };
        var e = Assert.Throws<TrainingDivergedException>(() => Trainer.Run(job));
        Assert.Contains("at step 1", e.Message);
        Assert.Contains("last good checkpoint (step 0)", e.Message);
        Assert.True(File.Exists(Path.Combine(job.OutputDir, Trainer.RunFolder, "checkpoint-0000000.safetensors")));
        Assert.False(File.Exists(Path.Combine(job.OutputDir, "model.safetensors")));
    }

    [Fact]
    public void ACrossEncoderTrainedFromABiEncoderLoadsAsOneAndScoresAsTrained()
    {
        var labeled = new TrainingData("pairs", ["sentence1", "sentence2"], "label",
            Pairs.SelectMany((p, i) => new[] { new TrainingExample([p.A, p.B], [1f]), new TrainingExample([p.A, Pairs[(i + 1) % Pairs.Length].B], [0f]) }).ToList());
        TrainingJob job = Job("ce", labeled, ModelKind.CrossEncoder) with
        {
            Parameters = new TrainingParameters { BatchSize = 8, LearningRate = 3e-3, Epochs = 30, Seed = 1 },
            Evaluator = TrainingEvaluator.Similarity(labeled),
        };
        TrainingResult result = Trainer.Run(job);
        Assert.True(result.BestMetric > 0.8, $"Spearman of the trained cross-encoder {result.BestMetric:F3}");
        using var encoder = CrossEncoder.Load(result.OutputDir);
        Assert.Equal(ScoreActivation.Sigmoid, encoder.Activation);
        float[] scores = encoder.Score(labeled.Examples.Select(e => (e.Texts[0], e.Texts[1])).ToList());
        double spearman = Funnel.Evaluation.Correlation.Spearman(scores.Select(s => (double)s).ToList(), labeled.Examples.Select(e => (double)e.Labels[0]).ToList());
        Assert.Equal(result.BestMetric!.Value, spearman, 1e-9); // the best step's model is the one in the output folder
        using JsonDocument config = JsonDocument.Parse(File.ReadAllText(Path.Combine(result.OutputDir, "config.json")));
        Assert.Equal("BertForSequenceClassification", config.RootElement.GetProperty("architectures")[0].GetString());
        Assert.Equal("torch.nn.modules.activation.Sigmoid", config.RootElement.GetProperty("sentence_transformers").GetProperty("activation_fn").GetString());
        Assert.False(File.Exists(Path.Combine(result.OutputDir, "modules.json")));
    }

    [Fact]
    public void ANewClassifierIsDrawnFromNormal002AndTheBasePoolerIsReused()
    {
        TrainingModel model = TrainingModel.Load(reference.BiEncoderDir, ModelKind.CrossEncoder, dropout: true, maxLength: null, seed: 9);
        Assert.Equal("pooler from the base, classifier new (N(0, 0.02) seeded, biases 0)", model.Initialization);
        float[] w = model.Classifier!.Classifier.Weight.Value;
        double std = Math.Sqrt(w.Average(v => (double)v * v));
        Assert.InRange(std, 0.012, 0.028); // 32 draws of N(0, 0.02)
        Assert.All(model.Classifier.Classifier.Bias.Value, b => Assert.Equal(0f, b));
        using var weights = Funnel.Inference.Weights.WeightFiles.Open(reference.BiEncoderDir);
        var pooler = new float[32 * 32];
        weights.Read("pooler.dense.weight", [32, 32], pooler);
        Assert.Equal(pooler, model.Classifier.Pooler.Weight.Value);
        TrainingModel again = TrainingModel.Load(reference.BiEncoderDir, ModelKind.CrossEncoder, dropout: true, maxLength: null, seed: 9);
        Assert.Equal(w, again.Classifier!.Classifier.Weight.Value);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>Progress reported on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
