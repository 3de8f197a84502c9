using Funnel.Inference.Weights.Onnx;

namespace Funnel.Inference.Weights;

/// <summary>
/// Finds a model folder's weights: safetensors when present (<c>model.safetensors</c> or the sharded
/// index), else <c>model.onnx</c>, else <c>onnx/model.onnx</c> (the optimum / transformers.js layout).
/// </summary>
internal static class ModelWeights
{
    public const string OnnxFile = "model.onnx";
    public const string OnnxSubfolderFile = "onnx/model.onnx";

    public static IWeightSource Open(string modelDir, BertConfig config)
    {
        if (File.Exists(Path.Combine(modelDir, WeightFiles.SingleFile)) || File.Exists(Path.Combine(modelDir, WeightFiles.IndexFile)))
            return WeightFiles.Open(modelDir);
        foreach (string onnx in new[] { OnnxFile, OnnxSubfolderFile })
        {
            string path = Path.Combine(modelDir, onnx);
            if (File.Exists(path)) return OnnxWeights.Open(path, config);
        }
        throw NoWeights(modelDir);
    }

    public static ModelFormatException NoWeights(string modelDir)
    {
        string hint = Directory.Exists(modelDir) && Directory.EnumerateFiles(modelDir, "*.bin").Any()
            ? " (PyTorch .bin checkpoints are not supported; convert them to safetensors)" : "";
        return new ModelFormatException(
            $"{modelDir}: no weights: expected {WeightFiles.SingleFile}, {WeightFiles.IndexFile}, {OnnxFile} or {OnnxSubfolderFile}{hint}");
    }
}
