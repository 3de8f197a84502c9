using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Funnel.Bench.Encoders;
using Funnel.IO;
using Encoding = Funnel.Tokenization.Encoding;

namespace Funnel.OnnxReference;

/// <summary>
/// Collects one model's reference outputs and writes <c>{name}.json</c> (header, then one line per text: source, prompt,
/// text, untruncated token count, ids, stored token positions) and <c>{name}.bin</c> (little-endian: every text's pooled,
/// normalised vector as float32 [texts × hidden], then each text's last hidden states at its stored positions as
/// float16 [positions × hidden], in text order).
/// </summary>
/// <remarks>
/// float16 keeps 11 significant bits, a relative rounding error of at most 2⁻¹¹ per element, so a stored row differs
/// from the float32 one by a relative norm of about 2⁻¹¹/√3 ≈ 2.8e-4 and 1 − cos ≈ (2.8e-4)²/2 ≈ 4e-8, far below the
/// tests' 1e-5. The writer measures it on every stored row rather than trusting the estimate (<see cref="Fp16OneMinusCosine"/>).
/// </remarks>
internal sealed class ParityFixtureWriter(ModelSpec model)
{
    // Texts up to this long keep every token's state; longer ones keep the first and last Edge tokens and Middle evenly
    // spaced ones, which keeps the fixture under 3 MB per model while every position class (CLS, SEP, truncation point) stays covered.
    private const int KeepAll = 32, Edge = 8, Middle = 6;

    private sealed record Entry(string Source, string Prompt, string Text, int UntruncatedLength, int[] Ids, int[] Positions);

    private readonly List<Entry> _entries = [];
    private readonly List<float[]> _pooled = [];
    private readonly List<Half[]> _rows = [];
    private int _hidden;

    public double Fp16OneMinusCosine { get; private set; }

    public double UnoptimizedOneMinusCosine { get; private set; }

    public int StoredRows => _rows.Count;

    public float[] Pooled(int text) => _pooled[text];

    public string Text(int text) => _entries[text].Text;

    public void Add(ParityText text, string prompt, int untruncated, Encoding encoding, float[] states)
    {
        int length = encoding.Length;
        _hidden = states.Length / length;
        int[] positions = Positions(length);
        _entries.Add(new Entry(text.Source, prompt, text.Text, untruncated, encoding.InputIds, positions));
        _pooled.Add(model.Pool(states, length, _hidden));
        foreach (int t in positions)
        {
            ReadOnlySpan<float> row = states.AsSpan(t * _hidden, _hidden);
            Half[] stored = new Half[_hidden];
            for (int d = 0; d < _hidden; d++) stored[d] = (Half)row[d];
            Fp16OneMinusCosine = Math.Max(Fp16OneMinusCosine, OneMinusCosine(row, stored.Select(h => (float)h).ToArray()));
            _rows.Add(stored);
        }
    }

    /// <summary>Records how far the unoptimised graph's states and pooled vector are from the reference's.</summary>
    public void CompareUnoptimized(float[] states, float[] unoptimized, int length)
    {
        for (int t = 0; t < length; t++)
            UnoptimizedOneMinusCosine = Math.Max(UnoptimizedOneMinusCosine,
                OneMinusCosine(states.AsSpan(t * _hidden, _hidden), unoptimized.AsSpan(t * _hidden, _hidden)));
        UnoptimizedOneMinusCosine = Math.Max(UnoptimizedOneMinusCosine, OneMinusCosine(model.Pool(states, length, _hidden), model.Pool(unoptimized, length, _hidden)));
    }

    internal static int[] Positions(int length)
    {
        if (length <= KeepAll) return Enumerable.Range(0, length).ToArray();
        int span = length - 2 * Edge;
        return [.. Enumerable.Range(0, Edge), .. Enumerable.Range(0, Middle).Select(i => Edge + (2 * i + 1) * span / (2 * Middle)), .. Enumerable.Range(length - Edge, Edge)];
    }

    public void Write(string folder, byte[] onnx, string tokenizerSha256, double? modelCardDiff)
    {
        var json = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        var header = new Dictionary<string, object?>
        {
            ["generator"] = "tools/OnnxReference (see its README.md to regenerate)",
            ["model"] = model.HubId,
            ["onnx"] = new { Package = model.Package, Version = ModelSpec.PackageVersion, Resource = model.OnnxResource, Bytes = onnx.Length, Sha256 = Program.Sha256(onnx) },
            ["onnxruntime"] = new { Version = OrtBert.Version, Provider = "CPU", Precision = "fp32", GraphOptimizationLevel = "ORT_ENABLE_ALL", IntraOpThreads = 1, Batch = 1 },
            ["tokenizer"] = new { File = "shared/models/all-MiniLM-L6-v2/tokenizer.json", Sha256 = tokenizerSha256, Implementation = "Funnel.Tokenization.BertTokenizer" },
            ["inputs"] = "unpadded, attention_mask all 1, token_type_ids all 0; ids include [CLS] and [SEP] and are truncated to max_length",
            ["hidden_size"] = _hidden,
            ["max_length"] = model.MaxLength,
            ["pooling"] = model.Pooling,
            ["normalize"] = true,
            ["query_prompt"] = model.QueryPrompt,
            ["data"] = new { File = model.Name + ".bin", Layout = "float32 pooled [texts × hidden], then float16 last_hidden_state [positions × hidden] per text, little-endian" },
            ["checks"] = new
            {
                Fp16MaxOneMinusCosine = Fp16OneMinusCosine,
                UnoptimizedGraphMaxOneMinusCosine = UnoptimizedOneMinusCosine,
                ModelCardMaxAbsDiff = modelCardDiff,
                PackagedVocabEqualsSharedVocab = true,
            },
        };
        var text = new StringBuilder("{\n");
        foreach (var (key, value) in header) text.Append($"  \"{key}\": {JsonSerializer.Serialize(value, json)},\n");
        text.Append("  \"texts\": [\n");
        for (int i = 0; i < _entries.Count; i++)
            text.Append("    ").Append(JsonSerializer.Serialize(_entries[i], json)).Append(i + 1 < _entries.Count ? ",\n" : "\n");
        text.Append("  ]\n}\n");

        DurableFile.WriteAtomic(Path.Combine(folder, model.Name + ".json"), s => s.Write(System.Text.Encoding.UTF8.GetBytes(text.ToString())));
        DurableFile.WriteAtomic(Path.Combine(folder, model.Name + ".bin"), s =>
        {
            using var writer = new BinaryWriter(s, System.Text.Encoding.UTF8, leaveOpen: true);
            foreach (float[] v in _pooled)
                foreach (float x in v) writer.Write(x);
            foreach (Half[] row in _rows)
                foreach (Half x in row) writer.Write(x);
        });
    }

    /// <summary>1 − cos as half the squared distance of the unit vectors, in double: no cancellation when the two nearly agree.</summary>
    private static double OneMinusCosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double normA = Math.Sqrt(SumOfSquares(a)), normB = Math.Sqrt(SumOfSquares(b)), distance = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = a[i] / normA - b[i] / normB;
            distance += d * d;
        }
        return distance / 2;
    }

    private static double SumOfSquares(ReadOnlySpan<float> v)
    {
        double sum = 0;
        foreach (float x in v) sum += (double)x * x;
        return sum;
    }
}
