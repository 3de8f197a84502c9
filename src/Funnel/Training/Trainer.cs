using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Funnel.Inference;
using Funnel.IO;
using Funnel.Training.Checkpoints;
using Funnel.Training.Data;

namespace Funnel.Training;

/// <summary>
/// The training loop: seeded shuffles per epoch, micro-batches with gradient accumulation, clipping, AdamW under the
/// linear warmup/decay schedule, evaluation every N steps and per epoch (keeping the best model), checkpoints every N
/// steps and on interruption. The same job, seed and thread count give bit-identical weights, resumed or not.
/// </summary>
public static class Trainer
{
    /// <summary>The run folder inside the output folder.</summary>
    public const string RunFolder = "training";

    private const string JobFile = "job.json", BestFolder = "best", LogFile = "log.jsonl";

    /// <summary>Where a run keeps its rows when <see cref="TrainingJob.SaveData"/> is set.</summary>
    public static string DataPath(string outputDir) => Path.Combine(outputDir, RunFolder, "data.jsonl");

    /// <summary>
    /// Runs <paramref name="job"/>. Throws <see cref="OutputFolderException"/> when the output folder holds something
    /// else, <see cref="TrainingDivergedException"/> when the loss stops being finite (after saving the last good
    /// step), and <see cref="OperationCanceledException"/> on cancellation (after saving a checkpoint to resume from).
    /// </summary>
    public static TrainingResult Run(TrainingJob job, IProgress<TrainingProgress>? progress = null, CancellationToken ct = default)
    {
        TrainingParameters p = job.Parameters;
        p.Validate();
        if (job.SaveSteps < 1) throw new ArgumentException($"--save-steps must be at least 1 (got {job.SaveSteps})");
        if (job.EvalSteps is < 1) throw new ArgumentException($"--eval-steps must be at least 1 (got {job.EvalSteps})");
        if (job.Threads < 1) throw new ArgumentException($"--threads must be at least 1 (got {job.Threads})");
        TrainingLoss loss = p.Loss ?? LossRequirements.Default(job.Kind, job.Data);
        if (loss == TrainingLoss.MarginMSELoss && job.Kind == ModelKind.BiEncoder && job.Teacher == null && job.Data.LabelColumn == null)
            throw new ArgumentException("MarginMSELoss needs a teacher's margins: a label column, or --teacher CROSS-ENCODER");
        LossRequirements.Validate(loss, job.Kind, job.Data, job.Teacher != null);

        string runDir = Path.Combine(job.OutputDir, RunFolder);
        Dictionary<string, string> identity = Identity(job, loss);
        TrainingState? state = PrepareOutput(job, runDir, identity, out string? note);
        if (note != null) progress?.Report(Event(0, 0, note));
        if (job.SaveData && !File.Exists(DataPath(job.OutputDir))) job.Data.WriteJsonLines(DataPath(job.OutputDir));

        TrainingModel model = TrainingModel.Load(job.BaseModel, job.Kind, p.Dropout, p.MaxLength, (ulong)p.Seed);
        var optimizer = new AdamW(model.Parameters, p.WeightDecay);
        using CrossEncoder? teacher = job.Teacher == null ? null : CrossEncoder.Load(job.Teacher, new EncoderOptions { MaxThreads = job.Threads });
        Objective objective = Objective.Create(loss, job.Kind, p, teacher == null ? null : pairs => teacher.Score(pairs));
        int? miniBatch = p.MiniBatchSize ?? (loss == TrainingLoss.CachedMultipleNegativesRankingLoss ? 32 : null);

        int rows = job.Data.Count, batchesPerEpoch = (rows + p.BatchSize - 1) / p.BatchSize;
        int stepsPerEpoch = (batchesPerEpoch + p.GradientAccumulation - 1) / p.GradientAccumulation;
        int total = p.MaxSteps ?? p.Epochs * stepsPerEpoch;
        int warmup = LinearSchedule.WarmupSteps(p.WarmupRatio, total);
        progress?.Report(Event(0, total, $"{loss}, {rows:N0} rows, {stepsPerEpoch:N0} steps per epoch, {total:N0} steps ({warmup} of warmup); {model.Initialization}; max length {model.MaxLength}"));

        if (state != null)
        {
            TrainingCheckpoint.Restore(runDir, state, model, optimizer);
            progress?.Report(Event(state.Step, total, $"resumed from step {state.Step} ({state.Checkpoint})"));
        }
        state ??= new TrainingState();

        var clock = Stopwatch.StartNew();
        double startSeconds = state.Seconds;
        var window = new Queue<(double Seconds, long Tokens, long Sequences)>();
        long tokensRun = 0, sequences = 0;
        double flops = 0, lastLoss = double.NaN;
        int[]? order = null;
        int orderEpoch = -1;
        using var log = new StreamWriter(Path.Combine(runDir, LogFile), append: true, new UTF8Encoding(false));

        // Measures the model after state.Step steps and keeps it when best; interrupted, it saves a checkpoint that owes this evaluation.
        string Evaluate(TrainingState pending)
        {
            double metric;
            try
            {
                metric = job.Evaluator!.Evaluate(model, job.Threads, ct);
            }
            catch (OperationCanceledException)
            {
                SaveCheckpoint(runDir, model, optimizer, pending with { Seconds = startSeconds + clock.Elapsed.TotalSeconds });
                progress?.Report(Event(pending.Step, total, $"interrupted: checkpoint of step {pending.Step} saved in {runDir}, its evaluation still to do; --resume continues from it"));
                throw;
            }
            // A measure that is not a number (a constant prediction's correlation) is never better than one that is.
            bool best = pending.BestMetric is not double previous || (double.IsNaN(previous) ? !double.IsNaN(metric) : metric > previous);
            state = pending with { EvalPending = false };
            if (best)
            {
                ExportReplacing(model, job.BaseModel, Path.Combine(runDir, BestFolder));
                state = state with { BestMetric = metric, BestStep = pending.Step };
            }
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{{\"step\":{pending.Step},\"eval\":{JsonSerializer.Serialize(job.Evaluator.Metric)},\"value\":{metric:R},\"best\":{(best ? "true" : "false")}}}"));
            return string.Create(CultureInfo.InvariantCulture, $"step {pending.Step}: {job.Evaluator.Metric} = {metric:F4}{(best ? " (best so far)" : "")}");
        }
        if (state.EvalPending && job.Evaluator != null) progress?.Report(Event(state.Step, total, Evaluate(state)));

        for (int step = state.Step; step < total; step++)
        {
            int epoch = step / stepsPerEpoch, inEpoch = step % stepsPerEpoch;
            if (epoch != orderEpoch)
            {
                order = SeededRandom.For((ulong)p.Seed, "epoch order", epoch).Permutation(rows);
                if (p.NoDuplicates) BatchOrder.SpreadDuplicates(order, job.Data.Examples, p.BatchSize);
                orderEpoch = epoch;
            }
            double stepLoss = 0, started = clock.Elapsed.TotalSeconds;
            long stepTokens = 0, stepSequences = 0;
            try
            {
                ct.ThrowIfCancellationRequested();
                foreach (Parameter parameter in model.Parameters) parameter.ClearGradient();
                int first = inEpoch * p.GradientAccumulation, micro = Math.Min(p.GradientAccumulation, batchesPerEpoch - first);
                var settings = new PassSettings(p.Dropout, miniBatch, 1f / micro, job.Threads);
                for (int m = 0; m < micro; m++)
                {
                    int start = (first + m) * p.BatchSize;
                    var batch = order!.Skip(start).Take(p.BatchSize).Select(i => job.Data.Examples[i]).ToList();
                    var (value, tokens, encoded) = objective.Run(model, batch, new StepPosition((ulong)p.Seed, step, m), settings, ct);
                    stepLoss += value / micro;
                    stepTokens += tokens;
                    stepSequences += encoded;
                }
                ct.ThrowIfCancellationRequested();
            }
            catch (OperationCanceledException)
            {
                SaveCheckpoint(runDir, model, optimizer, state with { Step = step, Seconds = startSeconds + clock.Elapsed.TotalSeconds });
                progress?.Report(Event(step, total, $"interrupted: checkpoint of step {step} saved in {runDir}; --resume continues from it"));
                throw;
            }

            float clip = AdamW.ClipCoefficient(model.Parameters, p.MaxGradNorm, out double norm);
            if (!double.IsFinite(stepLoss) || !double.IsFinite(norm))
            {
                SaveCheckpoint(runDir, model, optimizer, state with { Step = step, Seconds = startSeconds + clock.Elapsed.TotalSeconds });
                throw new TrainingDivergedException($"the {(double.IsFinite(stepLoss) ? "gradient norm" : "loss")} became {(double.IsFinite(stepLoss) ? norm : stepLoss)} at step {step + 1}; "
                                                    + $"training stopped without applying that step; the last good checkpoint (step {step}) is in {runDir} (a lower --lr may help)");
            }
            double lr = p.LearningRate * LinearSchedule.Factor(step, warmup, total);
            optimizer.Step(lr, clip, job.Threads);
            model.Repack(job.Threads);
            lastLoss = stepLoss;
            sequences += stepSequences;
            tokensRun += stepTokens;
            flops += ForwardFlops(model.Config, stepTokens, stepSequences);
            state = state with { Step = step + 1, Tokens = state.Tokens + stepTokens, Seconds = startSeconds + clock.Elapsed.TotalSeconds };
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"step\":{step + 1},\"epoch\":{epoch},\"loss\":{stepLoss:R},\"lr\":{lr:R},\"grad_norm\":{norm:R},\"tokens\":{stepTokens},\"seconds\":{clock.Elapsed.TotalSeconds - started:F3}}}"));

            window.Enqueue((clock.Elapsed.TotalSeconds - started, stepTokens, stepSequences));
            if (window.Count > 20) window.Dequeue();
            double seconds = window.Sum(w => w.Seconds);
            double stepsPerSecond = window.Count / Math.Max(seconds, 1e-9);
            bool epochEnd = (step + 1) % stepsPerEpoch == 0, last = step + 1 == total;
            string? evaluated = null;
            if (job.Evaluator != null && ((job.EvalSteps is int every && (step + 1) % every == 0) || epochEnd || last))
                evaluated = Evaluate(state with { EvalPending = true });
            log.Flush();
            progress?.Report(new TrainingProgress(step + 1, total, epoch, stepLoss, lr, stepsPerSecond, window.Sum(w => w.Tokens) / Math.Max(seconds, 1e-9),
                window.Sum(w => w.Sequences) / Math.Max(seconds, 1e-9), TimeSpan.FromSeconds(state.Seconds),
                TimeSpan.FromSeconds((total - step - 1) / stepsPerSecond), evaluated));
            if ((step + 1) % job.SaveSteps == 0 || last) SaveCheckpoint(runDir, model, optimizer, state);
        }

        // The output folder's model: the best evaluated step's, else the last step's.
        string bestDir = Path.Combine(runDir, BestFolder);
        if (job.Evaluator != null && Directory.Exists(bestDir)) CopyModel(bestDir, job.OutputDir);
        else ModelExport.Write(model, job.BaseModel, job.OutputDir);
        using var self = Process.GetCurrentProcess();
        return new TrainingResult(state.Step, double.IsNaN(lastLoss) ? null : lastLoss, job.Evaluator?.Metric, state.BestMetric, state.BestStep,
            job.OutputDir, clock.Elapsed, tokensRun, sequences, flops, self.PeakWorkingSet64);
    }

    private static TrainingProgress Event(int step, int total, string message) =>
        new(step, total, 0, double.NaN, 0, 0, 0, 0, TimeSpan.Zero, null, message);

    private static void SaveCheckpoint(string runDir, TrainingModel model, AdamW optimizer, TrainingState state) =>
        TrainingCheckpoint.Save(runDir, model, optimizer, state);

    /// <summary>2 × multiply-adds of one forward pass over <paramref name="tokens"/> tokens in <paramref name="sequences"/>
    /// sequences: the linear layers, plus attention's Q·Kᵀ and P·V estimated at the mean length.</summary>
    internal static double ForwardFlops(BertConfig c, long tokens, long sequences)
    {
        double h = c.HiddenSize, linear = 2.0 * (4 * h * h + 2 * h * c.IntermediateSize);
        double length = sequences == 0 ? 0 : (double)tokens / sequences;
        return c.Layers * tokens * (linear + 4 * length * h);
    }

    /// <summary>Throws <see cref="OutputFolderException"/> when <paramref name="outputDir"/> holds something other than a
    /// training run: the check <see cref="Run"/> starts with, for callers that prepare data first.</summary>
    public static void EnsureOutputFolderIsARun(string outputDir)
    {
        if (!Directory.Exists(outputDir) || !Directory.EnumerateFileSystemEntries(outputDir).Any() || File.Exists(Path.Combine(outputDir, RunFolder, JobFile))) return;
        string[] entries = Directory.EnumerateFileSystemEntries(outputDir).Select(Path.GetFileName).Take(4).ToArray()!;
        throw new OutputFolderException($"--out {outputDir} exists and is not a Funnel training run (it holds {string.Join(", ", entries)}…); give a new or empty folder");
    }

    /// <summary>Checks the output folder: empty or absent, or an earlier run of the same job (then its checkpoint is
    /// returned when resuming; otherwise the run starts over). Writes the job description.</summary>
    private static TrainingState? PrepareOutput(TrainingJob job, string runDir, Dictionary<string, string> identity, out string? note)
    {
        note = null;
        string jobPath = Path.Combine(runDir, JobFile);
        bool exists = Directory.Exists(job.OutputDir) && Directory.EnumerateFileSystemEntries(job.OutputDir).Any();
        if (exists)
        {
            EnsureOutputFolderIsARun(job.OutputDir);
            Dictionary<string, string> earlier;
            try
            {
                earlier = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllBytes(jobPath)) ?? [];
            }
            catch (JsonException e)
            {
                throw new OutputFolderException($"{jobPath}: not a readable job description ({e.Message})");
            }
            var differences = identity.Keys.Union(earlier.Keys).Order(StringComparer.Ordinal)
                .Where(k => identity.GetValueOrDefault(k) != earlier.GetValueOrDefault(k))
                .Select(k => $"{k}: {earlier.GetValueOrDefault(k) ?? "(none)"} → {identity.GetValueOrDefault(k) ?? "(none)"}").ToList();
            if (differences.Count > 0)
                throw new OutputFolderException($"--out {job.OutputDir} holds a run of another job ({string.Join("; ", differences.Take(5))}); give a new folder");
            TrainingState? state = TrainingCheckpoint.ReadState(runDir);
            if (job.Resume && state != null) return state;
            note = job.Resume ? "no checkpoint to resume from: starting from the base model" : $"{job.OutputDir} holds an earlier run of this job: starting over (--resume continues it instead)";
            foreach (string old in Directory.EnumerateFiles(runDir).Where(f => f != DataPath(job.OutputDir))) File.Delete(old);
            if (Directory.Exists(Path.Combine(runDir, BestFolder))) Directory.Delete(Path.Combine(runDir, BestFolder), recursive: true);
        }
        Directory.CreateDirectory(runDir);
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(identity, new JsonSerializerOptions { WriteIndented = true });
        DurableFile.WriteAtomic(jobPath, s => s.Write(json));
        return null;
    }

    /// <summary>What makes two runs the same job: everything that changes the trained weights, except the thread count.</summary>
    private static Dictionary<string, string> Identity(TrainingJob job, TrainingLoss loss)
    {
        TrainingParameters p = job.Parameters;
        string I(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        var id = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["kind"] = job.Kind.ToString(),
            ["base"] = Path.GetFullPath(job.BaseModel),
            ["loss"] = loss.ToString(),
            ["data"] = $"{job.Data.Count} rows, sha256 {DataHash(job.Data)}", // the rows themselves, wherever they were read from
            ["epochs"] = p.Epochs.ToString(CultureInfo.InvariantCulture),
            ["max_steps"] = p.MaxSteps?.ToString(CultureInfo.InvariantCulture) ?? "",
            ["batch_size"] = p.BatchSize.ToString(CultureInfo.InvariantCulture),
            ["lr"] = I(p.LearningRate),
            ["warmup_ratio"] = I(p.WarmupRatio),
            ["weight_decay"] = I(p.WeightDecay),
            ["max_grad_norm"] = I(p.MaxGradNorm),
            ["gradient_accumulation"] = p.GradientAccumulation.ToString(CultureInfo.InvariantCulture),
            ["mini_batch_size"] = p.MiniBatchSize?.ToString(CultureInfo.InvariantCulture) ?? "",
            ["max_length"] = p.MaxLength?.ToString(CultureInfo.InvariantCulture) ?? "",
            ["scale"] = p.Scale is double s ? I(s) : "",
            ["pos_weight"] = p.PosWeight is double w ? I(w) : "",
            ["in_batch_negatives"] = p.InBatchNegatives.ToString(CultureInfo.InvariantCulture),
            ["dropout"] = p.Dropout ? "on" : "off",
            ["batch_sampler"] = p.NoDuplicates ? "no duplicates" : "batch",
            ["seed"] = p.Seed.ToString(CultureInfo.InvariantCulture),
            ["eval"] = job.Evaluator is null ? "" : $"{job.Evaluator.Metric} every {job.EvalSteps?.ToString(CultureInfo.InvariantCulture) ?? "epoch"}",
            ["teacher"] = job.Teacher is null ? "" : Path.GetFullPath(job.Teacher),
        };
        foreach (var (k, v) in job.Identity) id[k] = v;
        return id;
    }

    private static string DataHash(TrainingData data)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (TrainingExample e in data.Examples)
        {
            foreach (string t in e.Texts) sha.AppendData(Encoding.UTF8.GetBytes(t + "\u001f"));
            foreach (float l in e.Labels) sha.AppendData(BitConverter.GetBytes(l));
            sha.AppendData("\u001e"u8);
        }
        return Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
    }

    /// <summary>Exports into a sibling temp folder, then swaps it in, so the folder always holds one complete model.</summary>
    private static void ExportReplacing(TrainingModel model, string baseDir, string dir)
    {
        string temp = dir + ".tmp";
        if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        ModelExport.Write(model, baseDir, temp);
        string old = dir + ".old";
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        if (Directory.Exists(dir)) Directory.Move(dir, old);
        Directory.Move(temp, dir);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
    }

    private static void CopyModel(string from, string to)
    {
        foreach (string file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            byte[] bytes = File.ReadAllBytes(file);
            DurableFile.WriteAtomic(target, s => s.Write(bytes));
        }
    }
}
