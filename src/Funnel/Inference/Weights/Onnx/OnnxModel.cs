using System.Runtime.InteropServices;
using Funnel.Inference.Hub;

namespace Funnel.Inference.Weights.Onnx;

/// <summary>
/// An ONNX model file, memory-mapped, with the external data files its tensors point to. Opening parses
/// the protobuf and checks every tensor's data against its type and dims, so later reads cannot run out
/// of bounds; tensors are converted to fp32 straight from the mappings.
/// </summary>
internal sealed class OnnxModel : IDisposable
{
    private readonly MappedFile _file;
    private readonly Dictionary<string, MappedFile> _external;

    public string Path => _file.Path;

    public OnnxModelProto Proto { get; }

    public OnnxGraph Graph => Proto.Graph!;

    /// <summary>The model file, then its external data files in the order the model first names them.</summary>
    public IReadOnlyList<string> Files { get; }

    private OnnxModel(MappedFile file, OnnxModelProto proto, Dictionary<string, MappedFile> external, IReadOnlyList<string> files)
    {
        _file = file;
        Proto = proto;
        _external = external;
        Files = files;
    }

    public static OnnxModel Open(string path)
    {
        MappedFile file = MappedFile.Open(path, "ONNX model");
        var external = new Dictionary<string, MappedFile>(StringComparer.Ordinal);
        try
        {
            if (file.Length > int.MaxValue)
                throw new ModelFormatException($"{path}: {file.Length} bytes is past protobuf's 2 GiB limit (larger ONNX models keep their weights in external data files)");
            OnnxModelProto proto = OnnxProto.ParseModel(file.Span(0, file.Length), path);
            if (proto.Graph is null || proto.IrVersion <= 0)
                throw new ModelFormatException($"{path}: not an ONNX model (no {(proto.Graph is null ? "graph" : "ir_version")} in the ModelProto)");
            if (!proto.Opsets.Any(o => o.Domain is "" or "ai.onnx"))
                throw new ModelFormatException($"{path}: not a valid ONNX model: no opset_import for the default domain");
            var files = new List<string> { path };
            foreach (OnnxTensor tensor in Tensors(proto.Graph))
                CheckData(tensor, file, external, files);
            return new OnnxModel(file, proto, external, files);
        }
        catch
        {
            foreach (MappedFile f in external.Values) f.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>Every tensor in the graph: initializers and the values of Constant nodes.</summary>
    public static IEnumerable<OnnxTensor> Tensors(OnnxGraph graph) =>
        graph.Initializers.Concat(graph.Nodes.SelectMany(n => n.Attributes).Select(a => a.Tensor).OfType<OnnxTensor>());

    private static void CheckData(OnnxTensor t, MappedFile file, Dictionary<string, MappedFile> external, List<string> files)
    {
        string path = file.Path;
        long count = t.ElementCount, size = t.ElementSize;
        if (t.External is { } ext)
        {
            if (!external.TryGetValue(ext.Location, out MappedFile? data))
            {
                string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
                string target = System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, ext.Location));
                // Lexical check only: the Hugging Face cache links every file to a blob elsewhere.
                if (!ModelFiles.IsSafeRelativePath(ext.Location) || !target.StartsWith(dir + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal))
                    throw new ModelFormatException($"{path}: tensor '{t.Name}' has external data at \"{ext.Location}\", outside the model's folder; refusing to read it");
                data = MappedFile.Open(target, $"external data of tensor '{t.Name}' in {path}");
                external[ext.Location] = data;
                files.Add(target);
            }
            long length = ext.Length ?? count * size;
            if (size > 0 && length != count * size)
                throw new ModelFormatException($"{path}: tensor '{t.Name}' {t.DataType} {t.ShapeText} needs {count * size} bytes, its external_data length is {length}");
            if (ext.Offset > data.Length || length > data.Length - ext.Offset)
                throw new ModelFormatException($"{path}: tensor '{t.Name}' has external data [{ext.Offset}, {ext.Offset + length}) past the end of {data.Path} ({data.Length} bytes)");
            return;
        }
        if (t.RawOffset >= 0)
        {
            if (size > 0 && t.RawLength != count * size)
                throw new ModelFormatException($"{path}: tensor '{t.Name}' {t.DataType} {t.ShapeText} needs {count * size} bytes, its raw_data has {t.RawLength} (at byte {t.RawOffset})");
            return;
        }
        (string field, long actual) = t.DataType switch
        {
            OnnxDataType.Float => ("float_data", t.FloatData?.Length ?? 0),
            OnnxDataType.Int64 => ("int64_data", t.Int64Data?.Length ?? 0),
            _ when size is > 0 and <= 4 && t.DataType != OnnxDataType.UInt32 => ("int32_data", t.Int32Data?.Length ?? 0),
            _ => ("", count),
        };
        if (actual != count)
            throw new ModelFormatException($"{path}: tensor '{t.Name}' {t.DataType} {t.ShapeText} has {count} elements, its {field} holds {actual}");
    }

    /// <summary>Converts a FLOAT, FLOAT16, BFLOAT16, INT8 or UINT8 tensor to fp32 (integers by value).</summary>
    public void ReadFloat32(OnnxTensor t, Span<float> destination)
    {
        if (destination.Length != t.ElementCount)
            throw new ArgumentException($"destination holds {destination.Length} values, tensor '{t.Name}' has {t.ElementCount}", nameof(destination));
        if (t.RawOffset < 0 && t.External is null)
        {
            ReadTyped(t, destination);
            return;
        }
        ReadOnlySpan<byte> raw = RawBytes(t);
        switch (t.DataType)
        {
            case OnnxDataType.Float: TensorDTypes.ToFloat32(raw, TensorDType.F32, destination); break;
            case OnnxDataType.Float16: TensorDTypes.ToFloat32(raw, TensorDType.F16, destination); break;
            case OnnxDataType.BFloat16: TensorDTypes.ToFloat32(raw, TensorDType.BF16, destination); break;
            case OnnxDataType.Int8:
                ReadOnlySpan<sbyte> s = MemoryMarshal.Cast<byte, sbyte>(raw);
                for (int i = 0; i < s.Length; i++) destination[i] = s[i];
                break;
            case OnnxDataType.UInt8:
                for (int i = 0; i < raw.Length; i++) destination[i] = raw[i];
                break;
            default: throw Unsupported(t);
        }
    }

    /// <summary>An INT64 tensor's values (shapes and indices); an empty array for any other type.</summary>
    public long[] ReadInt64(OnnxTensor t)
    {
        if (t.DataType != OnnxDataType.Int64) return [];
        if (t.RawOffset < 0 && t.External is null) return t.Int64Data ?? [];
        return MemoryMarshal.Cast<byte, long>(RawBytes(t)).ToArray();
    }

    /// <summary>The stored bytes of a tensor with raw_data or external data (checked at open to fit its type and dims).</summary>
    private ReadOnlySpan<byte> RawBytes(OnnxTensor t) => t.External is { } ext
        ? _external[ext.Location].Span(ext.Offset, t.ElementCount * t.ElementSize)
        : _file.Span(t.RawOffset, t.RawLength);

    private void ReadTyped(OnnxTensor t, Span<float> destination)
    {
        switch (t.DataType)
        {
            case OnnxDataType.Float: t.FloatData.AsSpan().CopyTo(destination); break;
            case OnnxDataType.Float16:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BitConverter.UInt16BitsToHalf((ushort)t.Int32Data![i]);
                break;
            case OnnxDataType.BFloat16:
                for (int i = 0; i < destination.Length; i++) destination[i] = TensorDTypes.FromBFloat16((ushort)t.Int32Data![i]);
                break;
            case OnnxDataType.Int8 or OnnxDataType.UInt8:
                for (int i = 0; i < destination.Length; i++) destination[i] = t.Int32Data![i];
                break;
            default: throw Unsupported(t);
        }
    }

    private ModelFormatException Unsupported(OnnxTensor t) =>
        new($"{Path}: tensor '{t.Name}' has data type {t.DataType}; weights must be FLOAT, FLOAT16 or BFLOAT16 (INT8 or UINT8 when quantized)");

    public void Dispose()
    {
        foreach (MappedFile f in _external.Values) f.Dispose();
        _file.Dispose();
    }
}
