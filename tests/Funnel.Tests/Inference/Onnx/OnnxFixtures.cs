using System.Text.Json;

namespace Funnel.Tests.Inference.Onnx;

/// <summary>
/// The ONNX fixtures (Fixtures/onnx, written by tools/onnx-fixtures/make_fixtures.py): tiny BERT exports,
/// their expected outputs and tensor SHA-256s, and broken graphs. Tests load them from model folders
/// assembled in a temp folder, as a user's folder would hold them.
/// </summary>
internal sealed class OnnxFixtures : IDisposable
{
    public sealed record Variant(string Name, string Head, string File, string? ExternalData, string WeightsKey);

    public sealed record Expected(Dictionary<string, string> Sha256, float[][][]? HiddenStates, float[]? Logits,
        float[][][]? OrtHiddenStates, float[]? OrtLogits);

    public static string Root { get; } = Path.Combine(TestPaths.Fixtures, "onnx");

    private static readonly Lazy<JsonDocument> Json = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Root, "onnx_reference.json"))));

    public static JsonElement Reference => Json.Value.RootElement;

    public static int[][] Ids => Reference.GetProperty("ids").Deserialize<int[][]>()!;

    public static string[] Texts => Reference.GetProperty("texts").Deserialize<string[]>()!;

    public static int[][] PairIds => Reference.GetProperty("pair_ids").Deserialize<int[][]>()!;

    public static int[][] PairTypeIds => Reference.GetProperty("pair_type_ids").Deserialize<int[][]>()!;

    public static IEnumerable<string> VariantNames => Reference.GetProperty("variants").EnumerateObject().Select(p => p.Name);

    public static Variant Get(string name)
    {
        JsonElement v = Reference.GetProperty("variants").GetProperty(name);
        return new Variant(name, v.GetProperty("head").GetString()!, v.GetProperty("file").GetString()!,
            v.TryGetProperty("external_data", out JsonElement ext) ? ext.GetString() : null, v.GetProperty("weights").GetString()!);
    }

    public static Expected ExpectedOf(Variant v)
    {
        JsonElement w = Reference.GetProperty("weights").GetProperty(v.WeightsKey);
        T? Optional<T>(string key) where T : class => w.TryGetProperty(key, out JsonElement e) ? e.Deserialize<T>() : null;
        return new Expected(w.GetProperty("sha256").Deserialize<Dictionary<string, string>>()!, Optional<float[][][]>("hidden_states"),
            Optional<float[]>("logits"), Optional<float[][][]>("ort_hidden_states"), Optional<float[]>("ort_logits"));
    }

    private readonly string _temp = Directory.CreateTempSubdirectory("funnel-onnx-").FullName;

    /// <summary>A model folder: the variant's config and tokenizer files, and its export as <paramref name="modelPath"/>.</summary>
    public string Folder(Variant v, string modelPath = "model.onnx") => Folder(v.Head, Path.Combine(Root, v.File), modelPath, v.ExternalData);

    /// <summary>A model folder of the micro model's config (Fixtures/onnx/bad) holding bad/<paramref name="name"/>.onnx.</summary>
    public string BadFolder(string name) => Folder("bad", Path.Combine(Root, "bad", name + ".onnx"), "model.onnx", null);

    /// <summary>A model folder from support files (bi, ce or bad) and a model file.</summary>
    public string Folder(string support, string model, string modelPath, string? externalData)
    {
        string dir = Path.Combine(_temp, Guid.NewGuid().ToString("N"));
        string source = Path.Combine(Root, support);
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".onnx", StringComparison.Ordinal)))
        {
            string target = Path.Combine(dir, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        string modelTarget = Path.Combine(dir, modelPath);
        Directory.CreateDirectory(Path.GetDirectoryName(modelTarget)!);
        File.Copy(model, modelTarget);
        if (externalData != null)
            File.Copy(Path.Combine(Root, externalData), Path.Combine(Path.GetDirectoryName(modelTarget)!, Path.GetFileName(externalData)));
        return dir;
    }

    public void Dispose() => Directory.Delete(_temp, recursive: true);
}
