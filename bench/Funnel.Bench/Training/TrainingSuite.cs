using System.Diagnostics;
using System.Globalization;
using Funnel.Bench.Encoders;
using Funnel.Inference;
using Funnel.Training;
using Funnel.Training.Losses;

namespace Funnel.Bench.Training;

/// <summary>
/// <c>training [--model seeded|DIR|ID] [--kind cross-encoder|bi-encoder] [--seq 32,128,256] [--batch 16] [--threads 2] [--steps 5]</c>:
/// a training step's throughput and where its time goes (forward with saved activations, loss and head, backward,
/// clipping, AdamW, re-packing the weights) against the inference forward pass on the same batch, in GFLOP/s
/// (training ≈ 3 × the forward pass's FLOPs).
/// </summary>
internal static class TrainingSuite
{
    public const string Help = "Training step throughput and phases vs the inference forward pass [--model seeded|DIR|ID] [--kind cross-encoder|bi-encoder] [--seq 32,256] [--batch 16] [--threads 2] [--steps 5]";

    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "kernels") return Kernels(args[1..]);
        string model = BenchArgs.Get(args, "--model", "seeded");
        ModelKind kind = BenchArgs.Get(args, "--kind", "cross-encoder") == "bi-encoder" ? ModelKind.BiEncoder : ModelKind.CrossEncoder;
        int[] lengths = BenchArgs.Get(args, "--seq", "32,128,256").Split(',').Select(int.Parse).ToArray();
        int batch = int.Parse(BenchArgs.Get(args, "--batch", "16"), CultureInfo.InvariantCulture);
        int threads = int.Parse(BenchArgs.Get(args, "--threads", Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        int steps = int.Parse(BenchArgs.Get(args, "--steps", "5"), CultureInfo.InvariantCulture);
        string dir = model == "seeded" ? BenchPaths.Locate().SeededModel("minilm-bi", "all-MiniLM-L6-v2", 1, crossEncoder: false)
            : Directory.Exists(model) ? model : BenchPaths.ResolveModel(model);

        TrainingModel m = TrainingModel.Load(dir, kind, dropout: true, maxLength: null, seed: 1);
        var optimizer = new AdamW(m.Parameters, 0.01);
        Console.WriteLine($"{kind} from {dir}: {m.Parameters.Sum(p => (long)p.Value.Length):N0} trainable parameters; {threads} threads; batch {batch}; median of {steps} steps after one warm-up");
        Console.WriteLine("| tokens / sequence | inference forward GFLOP/s | training step ms | sequences/s | training GFLOP/s (3 × forward) | vs inference | forward+save % | loss+head % | backward % | clip % | AdamW % | repack % | peak RSS MiB |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var rng = new Random(7);
        foreach (int length in lengths)
        {
            var sequences = Enumerable.Range(0, batch).Select(_ => Sequence(rng, length, m.Config.VocabSize, kind)).ToArray();
            ulong[] keys = Enumerable.Range(0, batch).Select(i => (ulong)i + 1).ToArray();
            double flops = Trainer.ForwardFlops(m.Config, (long)batch * length, batch);
            var inference = new List<double>();
            var phases = new List<double[]>();
            for (int s = 0; s <= steps; s++)
            {
                var clock = Stopwatch.StartNew();
                m.Represent(sequences, threads, CancellationToken.None);
                if (s > 0) inference.Add(clock.Elapsed.TotalSeconds);
                double[] t = Step(m, optimizer, sequences, keys, threads);
                if (s > 0) phases.Add(t);
            }
            double forward = Median(inference), step = Median(phases.Select(p => p.Sum()).ToList());
            double[] share = Enumerable.Range(0, 6).Select(i => 100 * Median(phases.Select(p => p[i]).ToList()) / step).ToArray();
            using var self = Process.GetCurrentProcess();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {length} | {flops / forward / 1e9:F1} | {step * 1000:F0} | {batch / step:F1} | {3 * flops / step / 1e9:F1} | {3 * flops / step / (flops / forward):P0} | {share[0]:F0} | {share[1]:F0} | {share[2]:F0} | {share[3]:F0} | {share[4]:F0} | {share[5]:F0} | {self.PeakWorkingSet64 / 1048576.0:N0} |"));
        }
        return 0;
    }

    /// <summary>One optimizer step on the batch, timed by phase: forward with saved activations, head and loss
    /// (forward and backward), encoder backward, clipping, AdamW, re-packing.</summary>
    private static double[] Step(TrainingModel m, AdamW optimizer, TokenSequence[] sequences, ulong[] keys, int threads)
    {
        var times = new double[6];
        var clock = Stopwatch.StartNew();
        void Lap(int phase)
        {
            times[phase] += clock.Elapsed.TotalSeconds;
            clock.Restart();
        }
        foreach (Parameter p in m.Parameters) p.ClearGradient();
        SequenceBatch batch = SequenceBatch.Create(sequences, keys);
        using EncoderActivations act = m.Encoder.Forward(batch, training: true, keep: true, threads, CancellationToken.None);
        Lap(0);
        var reps = new float[batch.Count * m.Head.Dimension];
        IHeadPass pass = m.Head.Forward(act, training: true, reps);
        var dReps = new float[reps.Length];
        if (m.Kind == ModelKind.CrossEncoder)
            new BinaryCrossEntropyLoss().Compute(reps, Enumerable.Range(0, batch.Count).Select(i => new[] { i }).ToList(),
                Enumerable.Range(0, batch.Count).Select(i => new[] { (float)(i % 2) }).ToList(), dReps);
        else
            new MultipleNegativesRankingLoss().Compute(reps, 2, batch.Count / 2, m.Head.Dimension, null, dReps);
        var dStates = new float[batch.Tokens * m.Config.HiddenSize];
        pass.Backward(dReps, dStates);
        Lap(1);
        m.Encoder.Backward(act, dStates, threads, CancellationToken.None);
        Lap(2);
        float clip = AdamW.ClipCoefficient(m.Parameters, 1.0, out _);
        Lap(3);
        optimizer.Step(1e-5, clip, threads);
        Lap(4);
        m.Repack(threads);
        Lap(5);
        return times;
    }

    /// <summary>GFLOP/s of the backward pass's products at MiniLM-L6's shapes beside the forward product: dW += dYᵀ·X
    /// and dX = dY·W (the forward kernel on Wᵀ).</summary>
    private static int Kernels(string[] args)
    {
        int[] rows = BenchArgs.Get(args, "--rows", "512,4096").Split(',').Select(int.Parse).ToArray();
        int threads = int.Parse(BenchArgs.Get(args, "--threads", "2"), CultureInfo.InvariantCulture);
        var rng = new Random(1);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        Console.WriteLine("| rows | N × K | forward y = x·Wᵀ GFLOP/s | dX = dY·W GFLOP/s | dW += dYᵀ·X GFLOP/s |");
        Console.WriteLine("|---:|---|---:|---:|---:|");
        foreach (int m in rows)
            foreach (var (n, k) in new[] { (1152, 384), (384, 384), (1536, 384), (384, 1536) })
            {
                float[] x = Random(m * k), w = Random(n * k), dy = Random(m * n), y = new float[m * n], dx = new float[m * k], dw = new float[n * k];
                var packed = Numerics.PackedMatrix.Pack(w, n, k);
                var transposed = Numerics.MatMulGradients.PackTransposed(w, n, k);
                double flops = 2.0 * m * n * k;
                double forward = Time(() => Numerics.MatMul.Linear(x, m, packed, [], y, maxThreads: threads), threads == 1);
                double input = Time(() => Numerics.MatMul.Linear(dy, m, transposed, [], dx, maxThreads: threads), threads == 1);
                double weight = Time(() => Numerics.MatMulGradients.AccumulateWeightGradient(dy, x, m, n, k, dw, threads), threads == 1);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {m} | {n} × {k} | {flops / forward / 1e9:F0} | {flops / input / 1e9:F0} | {flops / weight / 1e9:F0} |"));
            }
        return 0;
    }

    /// <summary>Seconds per call (the encoder kernels' timing: CPU time on one thread).</summary>
    private static double Time(Action call, bool cpuTime) => KernelBench.Time(call, 1.0, cpuTime) / 1000;

    private static TokenSequence Sequence(Random rng, int length, int vocab, ModelKind kind)
    {
        var ids = new int[length];
        var types = new int[length];
        ids[0] = 101;
        for (int t = 1; t < length; t++)
        {
            ids[t] = rng.Next(1000, vocab);
            types[t] = kind == ModelKind.CrossEncoder && t >= length / 2 ? 1 : 0;
        }
        ids[^1] = 102;
        return new TokenSequence(ids, types);
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}
