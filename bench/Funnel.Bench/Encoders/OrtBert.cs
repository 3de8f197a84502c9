using Funnel.Inference;
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

    public OrtBert(byte[] model, SessionOptions options) : this(new InferenceSession(model, options))
    {
    }

    public OrtBert(string modelPath, SessionOptions options) : this(new InferenceSession(modelPath, options))
    {
    }

    private OrtBert(InferenceSession session)
    {
        _session = session;
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

    /// <summary>A batch converted once, so that timed runs measure the session alone: rows padded with id 0 at the end to the
    /// longest, the attention mask 1 on each row's own <see cref="Lengths"/> tokens.</summary>
    public sealed class Feed : IDisposable
    {
        public Feed(IReadOnlyList<int[]> ids, IReadOnlyList<int[]> typeIds)
        {
            if (ids.Count == 0 || typeIds.Count != ids.Count || ids.Zip(typeIds).Any(p => p.First.Length != p.Second.Length))
                throw new ArgumentException("a feed needs at least one row and as many type ids as ids in each");
            Lengths = ids.Select(r => r.Length).ToArray();
            Columns = Lengths.Max();
            long[] shape = [ids.Count, Columns];
            long[] Padded(Func<int, int, long> value)
            {
                var flat = new long[ids.Count * Columns];
                for (int r = 0; r < ids.Count; r++)
                    for (int c = 0; c < Lengths[r]; c++) flat[r * Columns + c] = value(r, c);
                return flat;
            }
            Values =
            [
                OrtValue.CreateTensorValueFromMemory(Padded((r, c) => ids[r][c]), shape),
                OrtValue.CreateTensorValueFromMemory(Padded((_, _) => 1), shape),
                OrtValue.CreateTensorValueFromMemory(Padded((r, c) => typeIds[r][c]), shape),
            ];
        }

        /// <summary>Each row's tokens before padding.</summary>
        public int[] Lengths { get; }

        /// <summary>The padded length.</summary>
        public int Columns { get; }

        internal OrtValue[] Values { get; }

        public void Dispose()
        {
            foreach (OrtValue v in Values) v.Dispose();
        }
    }

    /// <summary>The first output, row-major ([rows × <see cref="Feed.Columns"/> × hidden] for a bi-encoder).</summary>
    public float[] Run(Feed feed)
    {
        using var runOptions = new RunOptions();
        using IDisposableReadOnlyCollection<OrtValue> outputs = _session.Run(runOptions, InputNames, feed.Values, _output);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>A bi-encoder's sentence vectors: each row's last hidden states pooled over its own tokens as Funnel pools them.</summary>
    public float[][] Embed(Feed feed, PoolingMode pooling, bool normalize)
    {
        float[] states = Run(feed);
        int hidden = states.Length / (feed.Lengths.Length * feed.Columns);
        return feed.Lengths.Select((length, r) =>
        {
            var v = new float[Inference.Pooling.Dimension(pooling, hidden)];
            Inference.Pooling.Pool(states.AsSpan(r * feed.Columns * hidden, length * hidden), length, hidden, pooling, normalize, v);
            return v;
        }).ToArray();
    }

    public void Dispose() => _session.Dispose();
}
