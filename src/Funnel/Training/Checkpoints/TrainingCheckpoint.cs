using System.Text.Json;
using System.Text.Json.Serialization;
using Funnel.Inference;
using Funnel.Inference.Weights;
using Funnel.IO;

namespace Funnel.Training.Checkpoints;

/// <summary>Where a run stands after its last completed optimizer step.</summary>
internal sealed record TrainingState
{
    [JsonPropertyName("step")] public int Step { get; init; }
    [JsonPropertyName("checkpoint")] public string Checkpoint { get; init; } = "";
    [JsonPropertyName("best_metric")] public double? BestMetric { get; init; }
    [JsonPropertyName("best_step")] public int? BestStep { get; init; }
    [JsonPropertyName("tokens")] public long Tokens { get; init; }
    [JsonPropertyName("seconds")] public double Seconds { get; init; }

    /// <summary>The step's evaluation was interrupted: a resumed run takes it first.</summary>
    [JsonPropertyName("eval_pending")] public bool EvalPending { get; init; }
}

/// <summary>
/// A resumable checkpoint in the run folder: <c>checkpoint-STEP.safetensors</c> holds every trainable parameter
/// and AdamW's two moments (exact float32, so a resumed run continues bit for bit), and <c>state.json</c> names it.
/// The tensors are written (fsynced, renamed into place) before <c>state.json</c> points at them and the previous
/// file is deleted only after, so a crash at any moment leaves a complete checkpoint behind.
/// </summary>
internal static class TrainingCheckpoint
{
    public const string StateFile = "state.json";

    public static void Save(string runDir, TrainingModel model, AdamW optimizer, TrainingState state)
    {
        Directory.CreateDirectory(runDir);
        string file = $"checkpoint-{state.Step:D7}.safetensors";
        var tensors = new List<NamedTensor>();
        for (int i = 0; i < model.Parameters.Count; i++)
        {
            Parameter p = model.Parameters[i];
            tensors.Add(new NamedTensor("param/" + p.Name, p.Shape, p.Value));
            tensors.Add(new NamedTensor("exp_avg/" + p.Name, p.Shape, optimizer.FirstMoments[i]));
            tensors.Add(new NamedTensor("exp_avg_sq/" + p.Name, p.Shape, optimizer.SecondMoments[i]));
        }
        SafeTensorsWriter.Write(Path.Combine(runDir, file), tensors);
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(state with { Checkpoint = file }, new JsonSerializerOptions { WriteIndented = true });
        DurableFile.WriteAtomic(Path.Combine(runDir, StateFile), s => s.Write(json));
        foreach (string old in Directory.EnumerateFiles(runDir, "checkpoint-*.safetensors"))
            if (Path.GetFileName(old) != file) File.Delete(old);
    }

    public static TrainingState? ReadState(string runDir)
    {
        string path = Path.Combine(runDir, StateFile);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<TrainingState>(File.ReadAllBytes(path)) ?? throw new ModelFormatException($"{path}: empty state");
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{path}: invalid training state ({e.Message})", e);
        }
    }

    /// <summary>Restores the parameters and the optimizer's moments (and step count) from the state's checkpoint.</summary>
    public static void Restore(string runDir, TrainingState state, TrainingModel model, AdamW optimizer)
    {
        using SafeTensorsFile file = SafeTensorsFile.Open(Path.Combine(runDir, state.Checkpoint));
        void Read(string name, float[] destination)
        {
            if (!file.Tensors.TryGetValue(name, out TensorEntry? e))
                throw new ModelFormatException($"{file.Path}: missing tensor '{name}' (the checkpoint is from another model)");
            if (e.ElementCount != destination.Length)
                throw new ModelFormatException($"{file.Path}: tensor '{name}' has {e.ElementCount} values, the model needs {destination.Length}");
            file.ReadFloat32(e, destination);
        }
        for (int i = 0; i < model.Parameters.Count; i++)
        {
            Parameter p = model.Parameters[i];
            Read("param/" + p.Name, p.Value);
            Read("exp_avg/" + p.Name, optimizer.FirstMoments[i]);
            Read("exp_avg_sq/" + p.Name, optimizer.SecondMoments[i]);
        }
        optimizer.Steps = state.Step;
        model.Repack();
    }
}
