using System.Diagnostics;
using Funnel.Inference;
using Funnel.Inference.Hub;

namespace Funnel.Bench.Encoders;

/// <summary>
/// Where the encoder bench finds and caches its inputs: the repository (Funnel.slnx), the shared
/// assets ($FUNNEL_SHARED or ../shared), and the git-ignored cache (.cache/) for random checkpoints
/// and their ONNX exports.
/// </summary>
internal sealed record BenchPaths(string Repo, string Shared)
{
    public string Cache => Path.Combine(Repo, ".cache");

    public static BenchPaths Locate()
    {
        string? repo = null;
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir != null && repo == null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Funnel.slnx"))) repo = dir.FullName;
        if (repo == null) throw new InvalidOperationException("run the bench from inside the Funnel repository (no Funnel.slnx found above it)");
        string shared = Environment.GetEnvironmentVariable("FUNNEL_SHARED") is { Length: > 0 } s ? s : Path.GetFullPath(Path.Combine(repo, "..", "shared"));
        if (!Directory.Exists(Path.Combine(shared, "models")))
            throw new InvalidOperationException($"shared assets not found at {shared} (set FUNNEL_SHARED)");
        return new BenchPaths(repo, shared);
    }

    /// <summary>The seeded random-weight checkpoint <paramref name="name"/>, written on first use.</summary>
    public string SeededModel(string name, string like, int seed, bool crossEncoder)
    {
        string dir = Path.Combine(Cache, "bench", name);
        if (!File.Exists(Path.Combine(dir, "model.safetensors")))
        {
            Console.Error.WriteLine($"writing the seeded checkpoint {name} to {dir}");
            SeededCheckpoint.Write(dir, Path.Combine(Shared, "models", like), seed, new SeededCheckpointOptions { CrossEncoder = crossEncoder });
        }
        return dir;
    }

    /// <summary>The ONNX exports of the same checkpoints, made by the shared PyTorch reference on first use.</summary>
    public (string Bi, string Cross) OnnxModels()
    {
        string dir = Path.Combine(Cache, "onnx");
        (string bi, string cross) = (Path.Combine(dir, "minilm-bi.onnx"), Path.Combine(dir, "minilm-ce.onnx"));
        if (!File.Exists(bi) || !File.Exists(cross))
        {
            string script = Path.Combine(Repo, "tools", "reference", "bert_reference.py");
            Console.Error.WriteLine($"exporting the ONNX models with {script} (needs /usr/bin/python3 with torch)");
            RunTool("/usr/bin/python3", [script, "--shared", Shared, "--onnx", dir], Repo);
        }
        return (bi, cross);
    }

    /// <summary>The seeded cross-encoder's ONNX export when it is cached or PyTorch is here to make it; else null.</summary>
    public string? CrossOnnxIfAvailable()
    {
        string cached = Path.Combine(Cache, "onnx", "minilm-ce.onnx");
        if (File.Exists(cached)) return cached;
        try
        {
            return OnnxModels().Cross;
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"no ONNX export of the seeded cross-encoder: {e.Message}");
            return null;
        }
    }

    /// <summary>The bi-encoder both sides run, by <c>--model</c>: <c>seeded</c> (the random-weight checkpoint and its
    /// ONNX export), or a model folder holding <c>model.onnx</c>, or an id the model resolver turns into one
    /// (<c>sentence-transformers/all-MiniLM-L6-v2</c> once packaged models resolve without the Hub).</summary>
    public (string FunnelFolder, string Onnx) BiEncoder(string model, int seed)
    {
        if (model == "seeded") return (SeededModel("minilm-bi", "all-MiniLM-L6-v2", seed, crossEncoder: false), OnnxModels().Bi);
        string folder = Directory.Exists(model) ? model : ResolveModel(model);
        string onnx = Path.Combine(folder, "model.onnx");
        if (!File.Exists(onnx)) throw new InvalidOperationException($"{folder} has no model.onnx for ONNX Runtime to run");
        return (folder, onnx);
    }

    internal static string ResolveModel(string id)
    {
        try
        {
            using var resolver = new ModelResolver(HubOptions.FromEnvironment());
            return resolver.ResolveAsync(id).GetAwaiter().GetResult();
        }
        catch (HubException e)
        {
            throw new InvalidOperationException($"--model {id}: {e.Message}");
        }
    }

    private static void RunTool(string file, string[] args, string workingDirectory)
    {
        var psi = new ProcessStartInfo(file, args) { WorkingDirectory = workingDirectory };
        using Process process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed with exit code {process.ExitCode}");
    }
}
