using System.Security.Cryptography;
using Funnel.Bench.Encoders;
using Funnel.Tokenization;
using Microsoft.ML.OnnxRuntime;

namespace Funnel.OnnxReference;

/// <summary>
/// Writes tests/Funnel.Tests/Fixtures/onnx-parity: ONNX Runtime's outputs for the packaged all-MiniLM-L6-v2 and
/// snowflake-arctic-embed-xs exports on real texts tokenized by Funnel's BertTokenizer. See README.md.
/// </summary>
public static class Program
{
    // ASSETS.md: all-MiniLM-L6-v2 fp32 (mean pool + L2 normalise), first 6 dims of ParityTexts.ModelCard, 1e-6 tolerance.
    private static readonly double[][] ModelCardValues =
    [
        [0.06765693, 0.06349593, 0.04871314, 0.07930495, 0.03744806, 0.00265273],
        [0.07853645, 0.08856265, -0.00209270, -0.00717247, -0.01252624, 0.01881747],
        [-0.11883835, 0.04829856, -0.00254805, -0.01101118, 0.05195070, 0.01029179],
        [0.05083271, 0.00967685, 0.09635572, -0.00997369, -0.01987603, 0.01692343],
    ];
    private const double ModelCardTolerance = 1e-6;

    // Bounds the tool enforces on what it writes (measured values go into the fixture's "checks").
    private const double MaxFp16OneMinusCosine = 1e-6;      // the tests require 1 − cos ≤ 1e-5 in all
    private const double MaxUnoptimizedOneMinusCosine = 1e-6; // ORT_DISABLE_ALL vs ORT_ENABLE_ALL

    public static int Main(string[] args)
    {
        string repo = RepoRoot();
        string shared = Option(args, "--shared") ?? (Environment.GetEnvironmentVariable("FUNNEL_SHARED") is { Length: > 0 } s ? s : Path.Combine(repo, "..", "shared"));
        string output = Option(args, "--out") ?? Path.Combine(repo, "tests", "Funnel.Tests", "Fixtures", "onnx-parity");
        string? only = Option(args, "--model");
        if (Option(args, "--extract") is { } extractTo)
        {
            // For the PyTorch cross-check (torch_crosscheck.py), which cannot read the assemblies itself.
            Directory.CreateDirectory(extractTo);
            foreach (ModelSpec model in ModelSpec.All.Where(m => only == null || m.Name == only))
                File.WriteAllBytes(Path.Combine(extractTo, model.Name + ".onnx"),
                    PackagedOnnx.ReadResource(PackagedOnnx.AssemblyPath(model.Package, ModelSpec.PackageVersion), model.OnnxResource));
            return 0;
        }
        Directory.CreateDirectory(output);
        string tokenizerJson = Path.Combine(shared, "models", "all-MiniLM-L6-v2", "tokenizer.json");
        BertTokenizer tokenizer = BertTokenizer.FromTokenizerJson(tokenizerJson);
        List<ParityText> texts = ParityTexts.Collect(shared, tokenizer);
        try
        {
            foreach (ModelSpec model in ModelSpec.All.Where(m => only == null || m.Name == only))
                Generate(model, shared, tokenizerJson, tokenizer, texts, output);
        }
        catch (InvalidDataException e)
        {
            Console.Error.WriteLine($"onnx-reference: {e.Message}");
            return 1;
        }
        return 0;
    }

    private static void Generate(ModelSpec model, string shared, string tokenizerJson, BertTokenizer tokenizer, List<ParityText> texts, string output)
    {
        string dll = PackagedOnnx.AssemblyPath(model.Package, ModelSpec.PackageVersion);
        byte[] onnx = PackagedOnnx.ReadResource(dll, model.OnnxResource);
        CheckVocabulary(dll, model, Path.Combine(shared, "models", "all-MiniLM-L6-v2", "vocab.txt"));
        Console.WriteLine($"{model.Name}: {onnx.Length:N0} bytes of ONNX from {dll}, ONNX Runtime {OrtBert.Version}");

        using SessionOptions optimized = OrtBert.Options(threads: 1), plain = OrtBert.Options(threads: 1, GraphOptimizationLevel.ORT_DISABLE_ALL);
        using var reference = new OrtBert(onnx, optimized);
        using var unoptimized = new OrtBert(onnx, plain);
        var fixture = new ParityFixtureWriter(model);
        foreach (ParityText text in texts)
        {
            string prompt = text.Query && model.QueryPrompt != null ? model.QueryPrompt : "";
            Encoding encoding = tokenizer.Encode(prompt + text.Text, model.MaxLength);
            int untruncated = tokenizer.Encode(prompt + text.Text, int.MaxValue).Length;
            float[] states = Run(reference, encoding), check = Run(unoptimized, encoding);
            fixture.Add(text, prompt, untruncated, encoding, states);
            fixture.CompareUnoptimized(states, check, encoding.Length);
        }
        if (fixture.UnoptimizedOneMinusCosine > MaxUnoptimizedOneMinusCosine || fixture.Fp16OneMinusCosine > MaxFp16OneMinusCosine)
            throw new InvalidDataException($"{model.Name}: unoptimised graph 1 − cos {fixture.UnoptimizedOneMinusCosine:E2}, float16 storage 1 − cos {fixture.Fp16OneMinusCosine:E2}; " +
                                           $"both must stay ≤ {MaxFp16OneMinusCosine:E0}");
        double? modelCardDiff = model.Pooling == "mean" ? CheckModelCard(model, fixture) : null;
        fixture.Write(output, onnx, Sha256(File.ReadAllBytes(tokenizerJson)), modelCardDiff);
        Console.WriteLine($"  {texts.Count} texts, {fixture.StoredRows} stored token rows; float16 storage 1 − cos ≤ {fixture.Fp16OneMinusCosine:E2}; " +
                          $"ORT_DISABLE_ALL vs ORT_ENABLE_ALL 1 − cos ≤ {fixture.UnoptimizedOneMinusCosine:E2}" +
                          (modelCardDiff is { } d ? $"; model card values within {d:E2}" : ""));
    }

    private static float[] Run(OrtBert session, Encoding encoding)
    {
        using var feed = new OrtBert.Feed([encoding.InputIds], [encoding.TokenTypeIds]);
        return session.Run(feed);
    }

    /// <summary>The fixture tokenizes with the shared bert-base-uncased vocabulary; the package must embed the same one.</summary>
    private static void CheckVocabulary(string dll, ModelSpec model, string sharedVocab)
    {
        string packaged = System.Text.Encoding.UTF8.GetString(PackagedOnnx.ReadResource(dll, model.VocabResource)).Replace("\r\n", "\n");
        if (packaged.TrimEnd('\n') != File.ReadAllText(sharedVocab).TrimEnd('\n'))
            throw new InvalidDataException($"{dll}: {model.VocabResource} differs from {sharedVocab} (beyond CRLF line ends)");
    }

    private static double CheckModelCard(ModelSpec model, ParityFixtureWriter fixture)
    {
        double worst = 0;
        for (int i = 0; i < ModelCardValues.Length; i++)
        {
            if (fixture.Text(i) != ParityTexts.ModelCard[i]) throw new InvalidOperationException("the model card sentences must come first, in ASSETS.md's order");
            float[] actual = fixture.Pooled(i);
            for (int d = 0; d < ModelCardValues[i].Length; d++)
            {
                double diff = Math.Abs(actual[d] - ModelCardValues[i][d]);
                if (diff > ModelCardTolerance)
                    throw new InvalidDataException($"{model.Name}: \"{ParityTexts.ModelCard[i]}\" dim {d} is {actual[d]:R}, the model card's {ModelCardValues[i][d]} (tolerance {ModelCardTolerance})");
                worst = Math.Max(worst, diff);
            }
        }
        return worst;
    }

    internal static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Funnel.slnx"))) return dir.FullName;
        throw new InvalidOperationException("run from inside the Funnel repository (no Funnel.slnx above the current folder)");
    }
}
