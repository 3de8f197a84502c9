using System.CommandLine;
using System.Globalization;
using Funnel.Evaluation;
using Funnel.Inference;
using Funnel.Training;
using Funnel.Training.Data;
using Funnel.Training.Evaluation;
using Spectre.Console;

namespace Funnel.Cli.Commands;

/// <summary>
/// <c>funnel train bi-encoder|cross-encoder</c>: fine-tunes a bi-encoder or trains a cross-encoder from a base model
/// on a training file, a BEIR split (with mined hard negatives) or the STS benchmark, evaluating as it goes.
/// </summary>
internal static class TrainCommand
{
    /// <summary>How long Ctrl-C waits for the current step to stop and the checkpoint to be written.</summary>
    public static readonly TimeSpan TerminationTimeout = TimeSpan.FromMinutes(2);

    public static Command Create()
    {
        var kind = new Argument<string>("kind") { Description = "bi-encoder or cross-encoder" };
        kind.AcceptOnlyFromAmong("bi-encoder", "cross-encoder");
        var baseModel = new Option<string>("--base") { Description = "Model to start from: a folder or Hub id (a cross-encoder may start from a bi-encoder)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Output folder (new, empty, or an earlier run of the same job)", Required = true };
        var train = new Option<string?>("--train") { Description = "Training file: .jsonl, .csv or .tsv with a header (anchor, positive, negative…; sentence1, sentence2, score/label)" };
        var dataset = new Option<string?>("--dataset") { Description = "A BEIR folder or zip (query–positive pairs from the qrels, grade ≥ 1), or the STS benchmark folder" };
        var split = new Option<string>("--split") { Description = "Split of --dataset", DefaultValueFactory = _ => "train" };
        var evalDataset = new Option<string?>("--eval-dataset") { Description = "BEIR dataset or STS benchmark folder to evaluate on (default --dataset when --eval-split is given)" };
        var evalSplit = new Option<string?>("--eval-split") { Description = "Split to evaluate on (default dev)" };
        var testSplit = new Option<string?>("--test-split") { Description = "After training, measure the output model once on this split of the evaluation dataset (e.g. test)" };
        var evalSteps = new Option<int?>("--eval-steps") { Description = "Also evaluate every N steps (always at each epoch's end)" };
        var evalMaxQueries = new Option<int?>("--eval-max-queries") { Description = "Evaluate on the first Q judged queries only" };
        var evalCandidates = new Option<string>("--eval-candidates") { Description = "Cross-encoder evaluation: rerank the bm25 or hybrid top N", DefaultValueFactory = _ => "bm25" };
        evalCandidates.AcceptOnlyFromAmong("bm25", "hybrid");
        var evalTop = new Option<int>("--eval-top") { Description = "Cross-encoder evaluation: candidates per query", DefaultValueFactory = _ => 30 };
        var evalBiEncoder = new Option<string?>("--eval-bi-encoder") { Description = "Bi-encoder for --eval-candidates hybrid (default --base when it is one)" };
        var loss = new Option<string?>("--loss") { Description = "Loss, by sentence-transformers' name: " + string.Join(", ", Enum.GetNames<TrainingLoss>()) };
        loss.AcceptOnlyFromAmong(Enum.GetNames<TrainingLoss>());
        var epochs = new Option<int>("--epochs") { Description = "Passes over the data", DefaultValueFactory = _ => 1 };
        var maxSteps = new Option<int?>("--max-steps") { Description = "Optimizer steps to run instead of --epochs" };
        var batch = new Option<int>("--batch-size") { Description = "Rows per batch", DefaultValueFactory = _ => 16 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate", DefaultValueFactory = _ => 2e-5 };
        var warmup = new Option<double>("--warmup-ratio") { Description = "Share of the steps with a rising learning rate", DefaultValueFactory = _ => 0.1 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW weight decay (not on biases and LayerNorm)", DefaultValueFactory = _ => 0.01 };
        var maxGradNorm = new Option<double>("--max-grad-norm") { Description = "Gradient-norm clipping", DefaultValueFactory = _ => 1.0 };
        var accumulation = new Option<int>("--gradient-accumulation") { Description = "Batches per optimizer step", DefaultValueFactory = _ => 1 };
        var miniBatch = new Option<int?>("--mini-batch-size") { Description = "GradCache: sequences per forward/backward pass (default 32 for Cached… losses)" };
        var maxLength = new Option<int?>("--max-length") { Description = "Tokens per text (per pair for a cross-encoder); default the base model's" };
        var scale = new Option<double?>("--scale") { Description = "The loss's scale (MNRL/CoSENT 20, cross-encoder MNRL 10)" };
        var posWeight = new Option<double?>("--pos-weight") { Description = "BinaryCrossEntropyLoss pos_weight" };
        var inBatch = new Option<int>("--in-batch-negatives") { Description = "Cross-encoder MultipleNegativesRankingLoss: sampled in-batch negatives per row", DefaultValueFactory = _ => 4 };
        var negatives = new Option<int?>("--negatives") { Description = "Mine K hard negatives per (anchor, positive) row" };
        var negativeSources = new Option<string>("--negative-sources") { Description = "bm25, dense or bm25,dense", DefaultValueFactory = _ => "bm25,dense" };
        var negativeRange = new Option<string>("--negative-range") { Description = "Ranks MIN:MAX to take negatives from", DefaultValueFactory = _ => "0:50" };
        var negativeMargin = new Option<double?>("--negative-margin") { Description = "A negative scores at most the positive's score minus this" };
        var negativeRelative = new Option<double?>("--negative-relative-margin") { Description = "A negative scores at most the positive's score × (1 − this)" };
        var negativeSampling = new Option<string>("--negative-sampling") { Description = "top or random", DefaultValueFactory = _ => "top" };
        negativeSampling.AcceptOnlyFromAmong("top", "random");
        var mineModel = new Option<string?>("--mine-model") { Description = "Bi-encoder that ranks dense negatives (default --base when it is a bi-encoder)" };
        var teacher = new Option<string?>("--teacher") { Description = "MarginMSELoss: a cross-encoder whose score margins are the labels" };
        var noDropout = new Option<bool>("--no-dropout") { Description = "Train without dropout" };
        var bothOrders = new Option<bool>("--both-orders") { Description = "Also train each (sentence1, sentence2) pair in the other order, for a symmetric cross-encoder score (training_stsbenchmark does)" };
        var noDuplicates = new Option<bool>("--no-duplicates") { Description = "Batches without repeated texts (sentence-transformers' NO_DUPLICATES sampler; for MultipleNegativesRankingLoss)" };
        var seed = new Option<int>("--seed") { Description = "Seed of shuffling, dropout, sampling and new weights", DefaultValueFactory = _ => 42 };
        var threads = new Option<int>("--threads") { Description = "Threads to use", DefaultValueFactory = _ => Environment.ProcessorCount };
        var saveSteps = new Option<int>("--save-steps") { Description = "Write a checkpoint every N steps", DefaultValueFactory = _ => 200 };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its checkpoint" };

        var command = new Command("train", "Train a bi-encoder (contrastive) or a cross-encoder reranker; writes a model folder for Funnel and sentence-transformers.")
        {
            kind, baseModel, output, train, dataset, split, evalDataset, evalSplit, testSplit, evalSteps, evalMaxQueries, evalCandidates, evalTop, evalBiEncoder,
            loss, epochs, maxSteps, batch, lr, warmup, weightDecay, maxGradNorm, accumulation, miniBatch, maxLength, scale, posWeight, inBatch,
            negatives, negativeSources, negativeRange, negativeMargin, negativeRelative, negativeSampling, mineModel, teacher, noDropout, bothOrders, noDuplicates, seed, threads,
            saveSteps, resume,
        };
        command.SetAction((parse, ct) => CliAction.RunAsync(parse, async stdout =>
        {
            var stderr = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(parse.InvocationConfiguration.Error) });
            TextWriter notes = parse.InvocationConfiguration.Error;
            ModelKind modelKind = parse.GetValue(kind) == "bi-encoder" ? ModelKind.BiEncoder : ModelKind.CrossEncoder;
            string outDir = parse.GetValue(output)!;
            Trainer.EnsureOutputFolderIsARun(outDir); // before any data is read or mined
            int threadCount = parse.GetValue(threads);
            if (threadCount < 1) throw new UsageException($"--threads must be at least 1 (got {threadCount})");
            string baseDir = await ModelFolders.ResolveAsync(parse.GetValue(baseModel)!, "base", notes, ct);
            var encoderOptions = new EncoderOptions { MaxThreads = threadCount };
            var identity = new Dictionary<string, string>(StringComparer.Ordinal);

            // Data: a file, or a dataset split; then mined negatives (kept in the run folder, so --resume reuses them).
            string? trainFile = parse.GetValue(train), datasetPath = parse.GetValue(dataset);
            if ((trainFile == null) == (datasetPath == null)) throw new UsageException("give the training data with either --train FILE or --dataset PATH");
            RetrievalSplit? retrieval = null;
            TrainingData data;
            if (trainFile != null) data = TrainingData.ReadFile(trainFile);
            else if (StsBenchmark.IsStsBenchmark(datasetPath!)) data = TrainingDatasets.StsBenchmark(datasetPath!, parse.GetValue(split)!);
            else if (BeirDataset.IsBeir(datasetPath!)) data = (retrieval = await TrainingDatasets.BeirAsync(datasetPath!, parse.GetValue(split)!, ct)).Pairs;
            else throw new UsageException($"--dataset {datasetPath}: not a BEIR folder or zip, nor the STS benchmark folder (sts-*.csv)");
            if (parse.GetValue(bothOrders)) data = data.WithBothOrders();

            if (parse.GetValue(negatives) is int count)
            {
                var options = MiningOptions(parse, count, negativeSources, negativeRange, negativeMargin, negativeRelative, negativeSampling, seed);
                identity["negatives"] = $"{count} from {parse.GetValue(negativeSources)} ranks {parse.GetValue(negativeRange)} margin {parse.GetValue(negativeMargin)} relative {parse.GetValue(negativeRelative)} {parse.GetValue(negativeSampling)} mined with {parse.GetValue(mineModel) ?? "--base"}";
                string saved = Trainer.DataPath(outDir);
                if (parse.GetValue(resume) && File.Exists(saved))
                {
                    data = TrainingData.ReadFile(saved);
                    notes.WriteLine($"mined negatives: reusing {saved}");
                }
                else
                {
                    using SentenceEncoder? miner = options.Sources.HasFlag(NegativeSources.Dense)
                        ? SentenceEncoder.Load(await BiEncoderFor(parse.GetValue(mineModel), baseDir, "--mine-model", notes, ct), encoderOptions) : null;
                    notes.WriteLine($"mining hard negatives for {data.Count:N0} rows…");
                    MinedNegatives mined = retrieval != null ? HardNegativeMiner.Mine(retrieval, options, miner, ct) : HardNegativeMiner.Mine(data, options, miner, ct);
                    notes.WriteLine(mined.Summary);
                    data = mined.Data;
                }
            }

            TrainingEvaluator? evaluator = await EvaluatorAsync(parse, modelKind, baseDir, datasetPath, evalDataset, parse.GetValue(evalSplit), parse.GetValue(evalMaxQueries),
                evalCandidates, evalTop, evalBiEncoder, encoderOptions, notes, ct);
            // The test measure takes every judged query, whatever --eval-max-queries trims for the evaluations during training.
            TrainingEvaluator? tester = parse.GetValue(testSplit) is { } ts
                ? await EvaluatorAsync(parse, modelKind, baseDir, datasetPath, evalDataset, ts, null, evalCandidates, evalTop, evalBiEncoder, encoderOptions, notes, ct)
                : null;
            string? teacherDir = parse.GetValue(teacher) is { } t ? await ModelFolders.ResolveAsync(t, "teacher", notes, ct) : null;
            var job = new TrainingJob
            {
                Kind = modelKind, BaseModel = baseDir, OutputDir = outDir, Data = data, Evaluator = evaluator, EvalSteps = parse.GetValue(evalSteps),
                SaveSteps = parse.GetValue(saveSteps), Teacher = teacherDir, Threads = threadCount, Resume = parse.GetValue(resume), Identity = identity,
                SaveData = parse.GetValue(negatives) != null,
                Parameters = new TrainingParameters
                {
                    Loss = parse.GetValue(loss) is { } l ? Enum.Parse<TrainingLoss>(l) : null, Epochs = parse.GetValue(epochs), MaxSteps = parse.GetValue(maxSteps),
                    BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr), WarmupRatio = parse.GetValue(warmup), WeightDecay = parse.GetValue(weightDecay),
                    MaxGradNorm = parse.GetValue(maxGradNorm), GradientAccumulation = parse.GetValue(accumulation), MiniBatchSize = parse.GetValue(miniBatch),
                    MaxLength = parse.GetValue(maxLength), Scale = parse.GetValue(scale), PosWeight = parse.GetValue(posWeight), InBatchNegatives = parse.GetValue(inBatch),
                    Dropout = !parse.GetValue(noDropout), NoDuplicates = parse.GetValue(noDuplicates), Seed = parse.GetValue(seed),
                },
            };
            // A diverged run (TrainingDivergedException) exits 1 through CliAction: the checkpoint keeps the last good step.
            TrainingResult result = await RunWithProgressAsync(job, stderr, parse.InvocationConfiguration.Error, ct);
            PrintSummary(result, stdout);
            if (tester != null)
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test: {tester.Metric} = {tester.Evaluate(outDir, modelKind, threadCount, ct):F4}"));
            return 0;
        }));
        return command;
    }

    private static HardNegativeOptions MiningOptions(ParseResult parse, int count, Option<string> sources, Option<string> range, Option<double?> margin,
        Option<double?> relative, Option<string> sampling, Option<int> seed)
    {
        if (count < 1) throw new UsageException($"--negatives must be at least 1 (got {count})");
        NegativeSources s = 0;
        foreach (string name in parse.GetValue(sources)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            s |= name switch
            {
                "bm25" => NegativeSources.Bm25,
                "dense" => NegativeSources.Dense,
                _ => throw new UsageException($"--negative-sources: unknown source '{name}' (expected bm25, dense or both)"),
            };
        string[] bounds = parse.GetValue(range)!.Split(':');
        if (bounds.Length != 2 || !int.TryParse(bounds[0], CultureInfo.InvariantCulture, out int min) || !int.TryParse(bounds[1], CultureInfo.InvariantCulture, out int max))
            throw new UsageException($"--negative-range {parse.GetValue(range)}: expected MIN:MAX, e.g. 0:50");
        return new HardNegativeOptions
        {
            Count = count, Sources = s, RangeMin = min, RangeMax = max, AbsoluteMargin = parse.GetValue(margin), RelativeMargin = parse.GetValue(relative),
            Random = parse.GetValue(sampling) == "random", Seed = parse.GetValue(seed),
        };
    }

    /// <summary>The bi-encoder folder for mining or hybrid candidates: the option's model, else the base when it is a bi-encoder.</summary>
    private static async Task<string> BiEncoderFor(string? option, string baseDir, string optionName, TextWriter notes, CancellationToken ct)
    {
        if (option != null) return await ModelFolders.ResolveAsync(option, optionName[2..], notes, ct);
        if (BertConfig.Load(baseDir).Architecture == BertArchitecture.BertModel) return baseDir;
        throw new UsageException($"the base model is a cross-encoder: give {optionName} BI-ENCODER for dense retrieval");
    }

    private static async Task<TrainingEvaluator?> EvaluatorAsync(ParseResult parse, ModelKind kind, string baseDir, string? trainDataset, Option<string?> dataset,
        string? split, int? maxQueries, Option<string> candidates, Option<int> top, Option<string?> biEncoder, EncoderOptions encoderOptions,
        TextWriter notes, CancellationToken ct)
    {
        string? path = parse.GetValue(dataset) ?? (split != null ? trainDataset : null);
        if (path == null)
        {
            if (split != null) throw new UsageException("--eval-split and --test-split need --eval-dataset (or --dataset)");
            return null;
        }
        string evalSplit = split ?? "dev";
        if (StsBenchmark.IsStsBenchmark(path)) return TrainingEvaluator.Similarity(TrainingDatasets.StsBenchmark(path, evalSplit));
        if (!BeirDataset.IsBeir(path)) throw new UsageException($"--eval-dataset {path}: not a BEIR folder or zip, nor the STS benchmark folder");
        RetrievalSplit eval = await TrainingDatasets.BeirAsync(path, evalSplit, ct);
        if (maxQueries is int q)
        {
            if (q < 1) throw new UsageException($"--eval-max-queries must be at least 1 (got {q})");
            eval = eval.FirstQueries(q);
        }
        if (kind == ModelKind.BiEncoder) return TrainingEvaluator.DenseRetrieval(eval);
        int n = parse.GetValue(top);
        if (n < 1) throw new UsageException($"--eval-top must be at least 1 (got {n})");
        if (parse.GetValue(candidates) == "bm25") return TrainingEvaluator.Reranking(eval, FirstStageCandidates.Bm25(eval, n), $"bm25 top {n}");
        using var encoder = SentenceEncoder.Load(await BiEncoderFor(parse.GetValue(biEncoder), baseDir, "--eval-bi-encoder", notes, ct), encoderOptions);
        notes.WriteLine($"hybrid candidates for {eval.Qrels.QueryIds.Count} evaluation queries…");
        return TrainingEvaluator.Reranking(eval, FirstStageCandidates.Hybrid(eval, encoder, n, ct), $"hybrid top {n}");
    }

    /// <summary>Runs the job under a progress bar on stderr (loss, steps/s, tokens/s, ETA), or plain lines when stderr is not a terminal.</summary>
    private static async Task<TrainingResult> RunWithProgressAsync(TrainingJob job, IAnsiConsole stderr, TextWriter log, CancellationToken ct)
    {
        if (!stderr.Profile.Capabilities.Interactive)
            return await Task.Run(() => Trainer.Run(job, new LineProgress(log), ct), ct);
        return await stderr.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn())
            .StartAsync(context =>
            {
                ProgressTask task = context.AddTask("training", maxValue: 1);
                return Task.Run(() => Trainer.Run(job, new BarProgress(task, stderr), ct), ct);
            });
    }

    private static string Line(TrainingProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"step {p.Step:N0}/{p.TotalSteps:N0} · epoch {p.Epoch + 1} · loss {p.Loss:F4} · lr {p.LearningRate:0.00e+0} · {p.StepsPerSecond:F2} steps/s · {p.TokensPerSecond:N0} tokens/s · ETA {Duration(p.Remaining)}");

    private static string Duration(TimeSpan? t) => t is not { } d ? "?" : d.TotalHours >= 1 ? $"{(int)d.TotalHours}:{d:mm\\:ss}" : $"{d:m\\:ss}";

    /// <summary>Moves the bar on the training thread; events (evaluations, notes) go above it.</summary>
    private sealed class BarProgress(ProgressTask task, IAnsiConsole console) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            if (p.Event != null) console.MarkupLineInterpolated($"[grey]{p.Event}[/]");
            if (double.IsNaN(p.Loss)) return;
            task.MaxValue = Math.Max(1, p.TotalSteps);
            task.Value = p.Step;
            task.Description = Markup.Escape(Line(p));
        }
    }

    /// <summary>For logs: every event, and a step line every 10 seconds.</summary>
    private sealed class LineProgress(TextWriter log) : IProgress<TrainingProgress>
    {
        private DateTime _last = DateTime.MinValue;

        public void Report(TrainingProgress p)
        {
            if (p.Event != null) log.WriteLine(p.Event);
            if (double.IsNaN(p.Loss) || (DateTime.UtcNow - _last < TimeSpan.FromSeconds(10) && p.Step != p.TotalSteps)) return;
            _last = DateTime.UtcNow;
            log.WriteLine(Line(p));
        }
    }

    private static void PrintSummary(TrainingResult r, TextWriter output)
    {
        double seconds = Math.Max(r.Elapsed.TotalSeconds, 1e-9);
        output.WriteLine($"model: {Path.GetFullPath(r.OutputDir)}");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"steps: {r.Steps:N0}, last loss {r.LastLoss:F4}; {r.Elapsed.TotalMinutes:F1} min, {r.Sequences / seconds:F1} sequences/s (texts or pairs), {r.Tokens / seconds:N0} tokens/s, "
            + $"{3 * r.ForwardFlops / seconds / 1e9:F1} GFLOP/s (forward + backward ≈ 3 × forward), peak RSS {r.PeakMemoryBytes / 1048576.0:N0} MiB"));
        if (r.Metric != null)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"best: {r.Metric} = {r.BestMetric:F4} at step {r.BestStep} (the model in the output folder)"));
    }
}
