using Microsoft.ML.OnnxRuntime;

namespace Funnel.Bench.Encoders;

/// <summary>
/// ONNX Runtime (CPU, fp32) on a BERT export taking <c>input_ids</c>, <c>attention_mask</c> and
/// <c>token_type_ids</c> (int64, [batch, sequence]); the first output is the last hidden state
/// [batch, sequence, hidden] of a bi-encoder or the logits [batch, labels] of a cross-encoder.
/// Shared by the encoder bench and tools/OnnxReference, which writes the parity fixtures.
/// </summary>
internal sealed class OrtBert : IDisposable
{
    private static readonly string[] InputNames = ["input_ids", "attention_mask", "token_type_ids"];
    private readonly InferenceSession _session;
    private readonly string[] _output;

    /// <summary>The comparison's configuration: <paramref name="threads"/> intra-op threads, one inter-op thread,
    /// sequential execution and <paramref name="level"/> (ONNX Runtime's default is all optimisations).</summary>
    public static SessionOptions Options(int threads, GraphOptimizationLevel level = GraphOptimizationLevel.ORT_ENABLE_ALL) => new()
    {
        IntraOpNumThreads = threads,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        GraphOptimizationLevel = level,
    };

    public OrtBert(byte[] model, SessionOptions options)
    {
        _session = new InferenceSession(model, options);
        string[] missing = InputNames.Where(n => !_session.InputMetadata.ContainsKey(n)).ToArray();
        if (missing.Length > 0)
        {
            string present = string.Join(", ", _session.InputMetadata.Keys);
            _session.Dispose();
            throw new InvalidOperationException($"the ONNX model lacks the input(s) {string.Join(", ", missing)} (it has {present})");
        }
        _output = [_session.OutputNames[0]];
    }

    public static string Version => OrtEnv.Instance().GetVersionString();

    public string OutputName => _output[0];

    /// <summary>Inputs of equal length, converted once so that timed runs measure the session alone.</summary>
    public sealed class Feed : IDisposable
    {
        public Feed(IReadOnlyList<int[]> ids, IReadOnlyList<int[]> typeIds)
        {
            Rows = ids.Count;
            Columns = ids[0].Length;
            if (ids.Any(r => r.Length != Columns) || typeIds.Count != Rows || typeIds.Any(r => r.Length != Columns))
                throw new ArgumentException("every row of a feed needs the same length (no padding)");
            long[] shape = [Rows, Columns];
            long[] Flat(IReadOnlyList<int[]> rows, Func<int, long> value) =>
                rows.SelectMany(r => r.Select(v => value(v))).ToArray();
            Values =
            [
                OrtValue.CreateTensorValueFromMemory(Flat(ids, v => v), shape),
                OrtValue.CreateTensorValueFromMemory(Flat(ids, _ => 1), shape),
                OrtValue.CreateTensorValueFromMemory(Flat(typeIds, v => v), shape),
            ];
        }

        public int Rows { get; }

        public int Columns { get; }

        internal OrtValue[] Values { get; }

        public void Dispose()
        {
            foreach (OrtValue v in Values) v.Dispose();
        }
    }

    /// <summary>The first output, row-major.</summary>
    public float[] Run(Feed feed)
    {
        using var runOptions = new RunOptions();
        using IDisposableReadOnlyCollection<OrtValue> outputs = _session.Run(runOptions, InputNames, feed.Values, _output);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    public void Dispose() => _session.Dispose();
}
