using System.Text.Json;
using System.Text.Json.Serialization;

namespace Funnel.Tests.Inference;

/// <summary>
/// ONNX Runtime's outputs for a real packaged model (Fixtures/onnx-parity/{model}.json + .bin, written by
/// tools/OnnxReference; format in its README): per text the ids, the pooled normalised vector and the last hidden
/// states at the stored token positions.
/// </summary>
internal sealed class OnnxParityFixture
{
    public sealed record Text(string Source, string Prompt, [property: JsonPropertyName("text")] string Value, int UntruncatedLength, int[] Ids, int[] Positions)
    {
        public int[] TypeIds => new int[Ids.Length];
    }

    private sealed record Header(string Model, int HiddenSize, int MaxLength, string Pooling, string? QueryPrompt, Text[] Texts);

    private readonly float[] _pooled;
    private readonly Half[] _states;
    private readonly int[] _stateOffsets;

    private OnnxParityFixture(Header header, byte[] data)
    {
        Model = header.Model;
        HiddenSize = header.HiddenSize;
        MaxLength = header.MaxLength;
        Pooling = header.Pooling;
        QueryPrompt = header.QueryPrompt;
        Texts = header.Texts;
        int pooledBytes = Texts.Count * HiddenSize * sizeof(float);
        _pooled = new float[Texts.Count * HiddenSize];
        Buffer.BlockCopy(data, 0, _pooled, 0, pooledBytes);
        _states = new Half[(data.Length - pooledBytes) / 2];
        for (int i = 0; i < _states.Length; i++) _states[i] = BitConverter.ToHalf(data, pooledBytes + 2 * i);
        _stateOffsets = new int[Texts.Count];
        int rows = 0;
        for (int i = 0; i < Texts.Count; i++)
        {
            _stateOffsets[i] = rows * HiddenSize;
            rows += Texts[i].Positions.Length;
        }
        Assert.Equal(rows * HiddenSize, _states.Length);
    }

    /// <summary>The Hub id, e.g. sentence-transformers/all-MiniLM-L6-v2.</summary>
    public string Model { get; }

    public int HiddenSize { get; }

    public int MaxLength { get; }

    /// <summary>"mean" or "cls".</summary>
    public string Pooling { get; }

    public string? QueryPrompt { get; }

    public IReadOnlyList<Text> Texts { get; }

    /// <param name="name">all-MiniLM-L6-v2 or snowflake-arctic-embed-xs.</param>
    public static OnnxParityFixture Load(string name)
    {
        string folder = Path.Combine(TestPaths.Fixtures, "onnx-parity");
        var options = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        Header header = JsonSerializer.Deserialize<Header>(File.ReadAllBytes(Path.Combine(folder, name + ".json")), options)
                        ?? throw new InvalidDataException($"{name}.json is empty");
        return new OnnxParityFixture(header, File.ReadAllBytes(Path.Combine(folder, name + ".bin")));
    }

    public ReadOnlySpan<float> Pooled(int text) => _pooled.AsSpan(text * HiddenSize, HiddenSize);

    /// <summary>The last hidden state of the text's <paramref name="k"/>-th stored position (<see cref="Text.Positions"/>), widened from float16.</summary>
    public float[] State(int text, int k)
    {
        var row = new float[HiddenSize];
        for (int d = 0; d < HiddenSize; d++) row[d] = (float)_states[_stateOffsets[text] + k * HiddenSize + d];
        return row;
    }
}
