using Funnel.Training.Data;
using Funnel.Training.Evaluation;

namespace Funnel.Training;

/// <summary>The hyperparameters of a run, with sentence-transformers' / Hugging Face Trainer's defaults.</summary>
public sealed record TrainingParameters
{
    /// <summary>Null: CoSENTLoss for scored pairs and MultipleNegativesRankingLoss otherwise (bi-encoder),
    /// BinaryCrossEntropyLoss (cross-encoder).</summary>
    public TrainingLoss? Loss { get; init; }

    public int Epochs { get; init; } = 1;

    /// <summary>Optimizer steps to run instead of <see cref="Epochs"/> (the data is cycled through in new orders).</summary>
    public int? MaxSteps { get; init; }

    /// <summary>Rows per micro-batch (a cross-encoder row with negatives scores several pairs).</summary>
    public int BatchSize { get; init; } = 16;

    public double LearningRate { get; init; } = 2e-5;

    public double WarmupRatio { get; init; } = 0.1;

    /// <summary>AdamW's decoupled weight decay, on every weight but biases and LayerNorm.</summary>
    public double WeightDecay { get; init; } = 0.01;

    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Micro-batches whose gradients are summed (each loss divided by their number) before a step.</summary>
    public int GradientAccumulation { get; init; } = 1;

    /// <summary>GradCache chunk: sequences per forward/backward pass (Cached… losses; default 32 for them).</summary>
    public int? MiniBatchSize { get; init; }

    /// <summary>Tokens per input (a pair, for a cross-encoder); default the model's.</summary>
    public int? MaxLength { get; init; }

    /// <summary>The loss's scale (MultipleNegativesRankingLoss and CoSENTLoss 20; the cross-encoder ranking loss 10).</summary>
    public double? Scale { get; init; }

    /// <summary>BinaryCrossEntropyLoss's pos_weight.</summary>
    public double? PosWeight { get; init; }

    /// <summary>Cross-encoder MultipleNegativesRankingLoss: documents of other rows sampled as extra negatives (num_negatives).</summary>
    public int InBatchNegatives { get; init; } = 4;

    /// <summary>sentence-transformers' NO_DUPLICATES batch sampler: no text appears twice in a batch (where the data
    /// allows), so a MultipleNegativesRankingLoss batch holds no second positive of an anchor as a false negative.</summary>
    public bool NoDuplicates { get; init; }

    /// <summary>Dropout as the model's config.json gives it (hidden 0.1, attention 0.1); false trains without.</summary>
    public bool Dropout { get; init; } = true;

    public int Seed { get; init; } = 42;

    internal void Validate()
    {
        static void Check(bool ok, string option, object? value, string rule)
        {
            if (!ok) throw new ArgumentException($"{option} must be {rule} (got {value})");
        }
        Check(Epochs >= 1, "--epochs", Epochs, "at least 1");
        Check(MaxSteps is null or >= 1, "--max-steps", MaxSteps, "at least 1");
        Check(BatchSize >= 1, "--batch-size", BatchSize, "at least 1");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), "--lr", LearningRate, "a positive number");
        Check(WarmupRatio is >= 0 and <= 1, "--warmup-ratio", WarmupRatio, "in [0, 1]");
        Check(WeightDecay >= 0, "--weight-decay", WeightDecay, "at least 0");
        Check(MaxGradNorm > 0, "--max-grad-norm", MaxGradNorm, "positive");
        Check(GradientAccumulation >= 1, "--gradient-accumulation", GradientAccumulation, "at least 1");
        Check(MiniBatchSize is null or >= 1, "--mini-batch-size", MiniBatchSize, "at least 1");
        Check(MaxLength is null or >= 3, "--max-length", MaxLength, "at least 3");
        Check(PosWeight is null or > 0, "--pos-weight", PosWeight, "positive");
        Check(InBatchNegatives >= 0, "--in-batch-negatives", InBatchNegatives, "at least 0");
    }
}

/// <summary>Everything a training run needs. Build the data first (files, BEIR splits, mined negatives).</summary>
public sealed record TrainingJob
{
    public required ModelKind Kind { get; init; }

    /// <summary>The model folder to start from: a bi-encoder or a cross-encoder (a cross-encoder from a bi-encoder gets a new classifier).</summary>
    public required string BaseModel { get; init; }

    /// <summary>Where the trained model goes; its <c>training/</c> subfolder holds the checkpoint, log and best model.</summary>
    public required string OutputDir { get; init; }

    public required TrainingData Data { get; init; }

    public TrainingParameters Parameters { get; init; } = new();

    /// <summary>Measured every <see cref="EvalSteps"/> steps and at each epoch's end; the best step's model is the one kept.</summary>
    public TrainingEvaluator? Evaluator { get; init; }

    public int? EvalSteps { get; init; }

    /// <summary>A checkpoint is written every this many steps (and when interrupted, and at the end).</summary>
    public int SaveSteps { get; init; } = 200;

    /// <summary>A cross-encoder whose score margins are MarginMSELoss's labels (distillation).</summary>
    public string? Teacher { get; init; }

    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Keep the rows in the run folder (<see cref="Trainer.DataPath"/>), so that resuming a run whose rows were
    /// mined need not mine them again.</summary>
    public bool SaveData { get; init; }

    /// <summary>Continue from the output folder's checkpoint when it holds one of this job.</summary>
    public bool Resume { get; init; }

    /// <summary>What else identifies the job (data sources, mining settings…): an output folder is only reused by the same job.</summary>
    public IReadOnlyDictionary<string, string> Identity { get; init; } = new Dictionary<string, string>();
}

/// <summary>One step's report.</summary>
public sealed record TrainingProgress(int Step, int TotalSteps, int Epoch, double Loss, double LearningRate, double StepsPerSecond,
    double TokensPerSecond, double SequencesPerSecond, TimeSpan Elapsed, TimeSpan? Remaining, string? Event);

/// <summary>What a run did: <see cref="Steps"/> in all, the rest for this session (a resumed run counts from where it
/// resumed). <see cref="Sequences"/> are the inputs encoded (texts for a bi-encoder, pairs for a cross-encoder);
/// <see cref="ForwardFlops"/> counts the encoder's forward multiply-adds ×2 (linear layers and attention), and training
/// costs about three times that. Evaluation time is included in <see cref="Elapsed"/>.</summary>
public sealed record TrainingResult(int Steps, double? LastLoss, string? Metric, double? BestMetric, int? BestStep, string OutputDir,
    TimeSpan Elapsed, long Tokens, long Sequences, double ForwardFlops, long PeakMemoryBytes);

/// <summary>The run stopped because the loss (or the gradient) stopped being a finite number; the checkpoint holds the last good step.</summary>
public sealed class TrainingDivergedException(string message) : FunnelException(FunnelErrorKind.Diverged, message);

/// <summary>The output folder exists and is not an earlier run of this job.</summary>
public sealed class OutputFolderException(string message) : FunnelException(FunnelErrorKind.Conflict, message);
