using System.CommandLine;
using Funnel.Inference;
using Funnel.Inference.Weights;

namespace Funnel.Cli.Commands;

/// <summary><c>funnel model random</c>: a deterministic random-weight model folder of a real architecture.</summary>
internal static class ModelCommand
{
    public static Command Create()
    {
        var like = new Option<string>("--like") { Description = "Model folder to copy the tokenizer and config from (e.g. ../shared/models/all-MiniLM-L6-v2)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder to write", Required = true };
        var seed = new Option<int>("--seed") { Description = "Seed of the weights", DefaultValueFactory = _ => 1 };
        var arch = new Option<string>("--arch") { Description = "minilm-l6 (384 hidden, 6 layers) or small (32 hidden, 2 layers)", DefaultValueFactory = _ => "minilm-l6" };
        arch.AcceptOnlyFromAmong("minilm-l6", "small");
        var cross = new Option<bool>("--cross-encoder") { Description = "Make a 1-label BertForSequenceClassification reranker instead of a bi-encoder" };
        var dtype = new Option<string>("--dtype") { Description = "Weight type: f32, f16 or bf16", DefaultValueFactory = _ => "f32" };
        dtype.AcceptOnlyFromAmong("f32", "f16", "bf16");
        var pooling = new Option<string?>("--pooling") { Description = "Bi-encoder pooling: mean, cls or max (default: the --like model's)" };
        pooling.AcceptOnlyFromAmong("mean", "cls", "max");
        var shards = new Option<int>("--shards") { Description = "Split the weights into this many safetensors shards", DefaultValueFactory = _ => 1 };

        var random = new Command("random", "Write a model folder with deterministic random weights (no pretrained weights are needed).")
        {
            like, output, seed, arch, cross, dtype, pooling, shards,
        };
        random.SetAction(parse => CliAction.Run(parse, stdout =>
        {
            string likeDir = parse.GetValue(like)!;
            if (!Directory.Exists(likeDir)) throw new UsageException($"{likeDir}: --like folder not found");
            if (File.Exists(parse.GetValue(output))) throw new UsageException($"--out '{parse.GetValue(output)}' is a file; give the folder to write the model into");
            var options = new SeededCheckpointOptions
            {
                Architecture = parse.GetValue(arch) == "small" ? CheckpointArchitecture.Small : CheckpointArchitecture.MiniLmL6,
                CrossEncoder = parse.GetValue(cross),
                DType = parse.GetValue(dtype) switch { "f16" => TensorDType.F16, "bf16" => TensorDType.BF16, _ => TensorDType.F32 },
                Pooling = parse.GetValue(pooling) switch { "mean" => PoolingMode.Mean, "cls" => PoolingMode.Cls, "max" => PoolingMode.Max, _ => null },
                Shards = parse.GetValue(shards),
            };
            foreach (string file in SeededCheckpoint.Write(parse.GetValue(output)!, likeDir, parse.GetValue(seed), options))
                stdout.WriteLine(file);
            return 0;
        }));
        return new Command("model", "Model folders.") { random };
    }
}
