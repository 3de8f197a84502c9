using System.Diagnostics;
using Funnel.Numerics;

namespace Funnel.Bench.Encoders;

/// <summary>
/// GFLOP/s of the kernels at MiniLM-L6's shapes (hidden 384, 12 heads × 32, intermediate 1536),
/// for tuning the GEMM and attention without the rest of the model.
/// </summary>
internal static class KernelBench
{
    private const int Hidden = 384, Heads = 12, HeadDim = 32, Intermediate = 1536;

    public static void Run(IReadOnlyList<int> threadCounts, IReadOnlyList<int> seqLengths, int batch, double seconds)
    {
        var rng = new Random(1);
        (string Name, int N, int K, Epilogue Epilogue)[] linears =
        [
            ("qkv", 3 * Hidden, Hidden, Epilogue.None),
            ("attn-out", Hidden, Hidden, Epilogue.Residual),
            ("ffn-up", Intermediate, Hidden, Epilogue.Gelu),
            ("ffn-down", Hidden, Intermediate, Epilogue.Residual),
        ];
        Console.WriteLine("(1 thread: CPU time per call; more threads: wall time)");
        Console.WriteLine($"{"kernel",-10} {"M",6} {"N",5} {"K",5} {"threads",7} {"ms/call",9} {"GFLOP/s",9}");
        foreach (int seq in seqLengths)
        {
            int m = batch * seq;
            foreach (var (name, n, k, epilogue) in linears)
            {
                float[] x = Random(rng, m * k), bias = Random(rng, n), y = new float[m * n], residual = Random(rng, m * n);
                PackedMatrix w = PackedMatrix.Pack(Random(rng, n * k), n, k);
                foreach (int t in threadCounts)
                {
                    double ms = Time(() => MatMul.Linear(x, m, w, bias, y, epilogue, residual, t), seconds, cpuTime: t == 1);
                    Console.WriteLine($"{name,-10} {m,6} {n,5} {k,5} {t,7} {ms,9:F3} {2.0 * m * n * k / ms / 1e6,9:F1}");
                }
            }
            int[] lengths = Enumerable.Repeat(seq, batch).ToArray();
            float[] qkv = Random(rng, m * 3 * Hidden), context = new float[m * Hidden];
            foreach (int t in threadCounts)
            {
                double ms = Time(() => Attention.SelfAttention(qkv, lengths, Heads, HeadDim, context, t), seconds, cpuTime: t == 1);
                double flops = 4.0 * batch * seq * seq * Hidden;
                Console.WriteLine($"{"attention",-10} {m,6} {seq,5} {HeadDim,5} {t,7} {ms,9:F3} {flops / ms / 1e6,9:F1}");
            }
            float[] gamma = Random(rng, Hidden), beta = Random(rng, Hidden);
            foreach (int t in threadCounts)
            {
                double ms = Time(() => Normalization.LayerNorm(context, m, gamma, beta, 1e-12f, t), seconds, cpuTime: t == 1);
                Console.WriteLine($"{"layernorm",-10} {m,6} {Hidden,5} {"",5} {t,7} {ms,9:F3} {"",9}");
            }
        }
    }

    private static float[] Random(Random rng, int count)
    {
        var v = new float[count];
        for (int i = 0; i < count; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }

    /// <summary>Milliseconds per call: the best of several runs after a warm-up. On one thread this is
    /// the process's CPU time, which a shared machine's time-slicing does not inflate.</summary>
    internal static double Time(Action call, double seconds, bool cpuTime)
    {
        call();
        using var self = Process.GetCurrentProcess();
        var total = Stopwatch.StartNew();
        double best = double.MaxValue;
        do
        {
            self.Refresh();
            TimeSpan cpu0 = self.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            int reps = 0;
            do { call(); reps++; } while (sw.Elapsed.TotalMilliseconds < 100);
            self.Refresh();
            double ms = cpuTime ? (self.TotalProcessorTime - cpu0).TotalMilliseconds : sw.Elapsed.TotalMilliseconds;
            best = Math.Min(best, ms / reps);
        } while (total.Elapsed.TotalSeconds < seconds);
        return best;
    }
}
