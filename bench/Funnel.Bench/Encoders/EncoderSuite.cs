using Funnel.Inference;

namespace Funnel.Bench.Encoders;

/// <summary>
/// <c>encoders [kernels] [--model seeded|DIR|ID] [--threads 1,2] [--seq 32,128,256] [--batch 1,32] [--iterations N] [--precision fp32,int8]</c>.
/// </summary>
internal static class EncoderSuite
{
    public const string Help = "MiniLM-L6 bi-/cross-encoder throughput vs ONNX Runtime .NET in-process [--model seeded|DIR|ID]; 'encoders kernels' for GEMM GFLOP/s";

    /// <param name="Model">The bi-encoder: <c>seeded</c> (random weights, the default until Funnel loads ONNX), a folder
    /// with model.onnx, or a model id (e.g. sentence-transformers/all-MiniLM-L6-v2).</param>
    /// <param name="Precisions">Funnel's precisions to measure, each against the same ONNX Runtime fp32 run.</param>
    internal sealed record Options(int[] Threads, int[] SeqLengths, int[] Batches, int Iterations, string Model, InferencePrecision[] Precisions);

    public static int Run(string[] args)
    {
        bool kernelsOnly = args.Length > 0 && args[0] == "kernels";
        Options options;
        try
        {
            options = Parse(kernelsOnly ? args[1..] : args);
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"encoders: {e.Message}");
            return 2;
        }
        if (kernelsOnly)
        {
            KernelBench.Run(options.Threads, options.SeqLengths, options.Batches.Max(), seconds: 0.5);
            return 0;
        }
        try
        {
            return EncoderBench.Run(options);
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"encoders: {e.Message}");
            return 1;
        }
    }

    private static Options Parse(string[] args)
    {
        var options = new Options([1, 2], [32, 128, 256], [1, 32], 10, "seeded", [InferencePrecision.Fp32]);
        for (int i = 0; i < args.Length; i++)
        {
            string value = i + 1 < args.Length ? args[i + 1] : throw new FormatException($"{args[i]} needs a value");
            options = args[i] switch
            {
                "--threads" => options with { Threads = List(args[i], value) },
                "--seq" => options with { SeqLengths = List(args[i], value) },
                "--batch" => options with { Batches = List(args[i], value) },
                "--iterations" => options with { Iterations = Positive(args[i], value) },
                "--model" => options with { Model = value },
                "--precision" => options with { Precisions = value.Split(',').Select(ParsePrecision).Distinct().ToArray() },
                _ => throw new FormatException($"unknown option {args[i]}; expected --model, --threads, --seq, --batch, --iterations or --precision"),
            };
            i++;
        }
        return options;
    }

    private static InferencePrecision ParsePrecision(string value) => value switch
    {
        "fp32" => InferencePrecision.Fp32,
        "int8" => InferencePrecision.Int8,
        "bf16" => throw new FormatException("--precision bf16: .NET 10 exposes no AVX512-BF16 (vdpbf16ps) intrinsic, so Funnel has no bf16 path"),
        _ => throw new FormatException($"--precision expects fp32 and/or int8, comma-separated, got '{value}'"),
    };

    private static int[] List(string name, string value) => value.Split(',').Select(v => Positive(name, v)).ToArray();

    private static int Positive(string name, string value) =>
        int.TryParse(value, out int n) && n > 0 ? n : throw new FormatException($"{name} expects positive integers, got '{value}'");
}
