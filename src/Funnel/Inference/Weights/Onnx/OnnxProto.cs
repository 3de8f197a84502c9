using System.Globalization;

namespace Funnel.Inference.Weights.Onnx;

/// <summary>TensorProto.DataType values (onnx.proto).</summary>
internal enum OnnxDataType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    Complex64 = 14,
    Complex128 = 15,
    BFloat16 = 16,
}

/// <summary>Where a tensor's bytes live in an external data file (TensorProto.external_data).</summary>
internal sealed record ExternalData(string Location, long Offset, long? Length);

/// <summary>
/// A TensorProto: name, type, dims and where its values are — a range of the model file (raw_data), an
/// external file, or the typed fields (float_data; int32_data, which also holds FLOAT16/BFLOAT16 bits and
/// 8/16-bit integers; int64_data), decoded here because exporters use them only for small tensors.
/// </summary>
internal sealed class OnnxTensor
{
    public string Name { get; set; } = "";
    public OnnxDataType DataType { get; set; }
    public long[] Dims { get; set; } = [];
    /// <summary>File offset and length of raw_data, or -1 when the tensor has none.</summary>
    public long RawOffset { get; set; } = -1;
    public long RawLength { get; set; }
    public ExternalData? External { get; set; }
    public float[]? FloatData { get; set; }
    public long[]? Int32Data { get; set; }
    public long[]? Int64Data { get; set; }

    public long ElementCount => Dims.Aggregate(1L, (a, d) => checked(a * d));

    public string ShapeText => "[" + string.Join(", ", Dims) + "]";

    /// <summary>Bytes per element of the fixed-size types, 0 for others (strings, complex).</summary>
    public int ElementSize => DataType switch
    {
        OnnxDataType.Float or OnnxDataType.Int32 or OnnxDataType.UInt32 => 4,
        OnnxDataType.UInt8 or OnnxDataType.Int8 or OnnxDataType.Bool => 1,
        OnnxDataType.UInt16 or OnnxDataType.Int16 or OnnxDataType.Float16 or OnnxDataType.BFloat16 => 2,
        OnnxDataType.Int64 or OnnxDataType.Double or OnnxDataType.UInt64 => 8,
        _ => 0,
    };

    public bool IsFloatingPoint => DataType is OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Double;
}

/// <summary>An AttributeProto: the number, integer list or tensor it holds (strings and graphs are skipped).</summary>
internal sealed class OnnxAttribute
{
    public string Name { get; set; } = "";
    public long Int { get; set; }
    public float Float { get; set; }
    public List<long> Ints { get; } = [];
    public OnnxTensor? Tensor { get; set; }
}

internal sealed class OnnxNode
{
    public string Name { get; set; } = "";
    public string OpType { get; set; } = "";
    public string Domain { get; set; } = "";
    public List<string> Inputs { get; } = [];
    public List<string> Outputs { get; } = [];
    public List<OnnxAttribute> Attributes { get; } = [];

    /// <summary>Input <paramref name="index"/>, or "" when absent (ONNX writes "" for a skipped optional input too).</summary>
    public string Input(int index) => index < Inputs.Count ? Inputs[index] : "";

    public OnnxAttribute? Attribute(string name) => Attributes.FirstOrDefault(a => a.Name == name);

    public long Int(string name, long fallback) => Attribute(name)?.Int ?? fallback;

    public float Float(string name, float fallback) => Attribute(name)?.Float ?? fallback;

    public override string ToString() => $"node '{Name}' ({(Domain is "" or "ai.onnx" ? "" : Domain + ".")}{OpType})";
}

internal sealed class OnnxGraph
{
    public List<OnnxNode> Nodes { get; } = [];
    public List<OnnxTensor> Initializers { get; } = [];
    public List<string> Inputs { get; } = [];
    public List<string> Outputs { get; } = [];
    public int SparseInitializers { get; set; }
}

internal sealed record OnnxOpset(string Domain, long Version);

/// <summary>The parts of a ModelProto that weight import needs.</summary>
internal sealed class OnnxModelProto
{
    public long IrVersion { get; set; }
    public string Producer { get; set; } = "";
    public List<OnnxOpset> Opsets { get; } = [];
    public OnnxGraph? Graph { get; set; }
}

/// <summary>Parses ONNX protobuf messages (field numbers from onnx.proto); unknown fields are skipped.</summary>
internal static class OnnxProto
{
    public static OnnxModelProto ParseModel(ReadOnlySpan<byte> data, string path)
    {
        var r = new ProtoReader(data, 0, path, "ModelProto");
        var model = new OnnxModelProto();
        string producerVersion = "";
        while (r.Next(out int field, out WireType type))
        {
            switch (field)
            {
                case 1: r.Expect(type, WireType.Varint); model.IrVersion = r.Int64(); break;
                case 2: r.Expect(type, WireType.LengthDelimited); model.Producer = r.String(); break;
                case 3: r.Expect(type, WireType.LengthDelimited); producerVersion = r.String(); break;
                case 7:
                    r.Expect(type, WireType.LengthDelimited);
                    var g = r.Message("GraphProto");
                    model.Graph = ParseGraph(ref g);
                    break;
                case 8:
                    r.Expect(type, WireType.LengthDelimited);
                    var o = r.Message("OperatorSetIdProto");
                    model.Opsets.Add(ParseOpset(ref o));
                    break;
                default: r.Skip(type); break;
            }
        }
        if (producerVersion.Length > 0) model.Producer = (model.Producer + " " + producerVersion).Trim();
        return model;
    }

    private static OnnxOpset ParseOpset(ref ProtoReader r)
    {
        string domain = "";
        long version = 0;
        while (r.Next(out int field, out WireType type))
        {
            if (field == 1) { r.Expect(type, WireType.LengthDelimited); domain = r.String(); }
            else if (field == 2) { r.Expect(type, WireType.Varint); version = r.Int64(); }
            else r.Skip(type);
        }
        return new OnnxOpset(domain, version);
    }

    private static OnnxGraph ParseGraph(ref ProtoReader r)
    {
        var graph = new OnnxGraph();
        while (r.Next(out int field, out WireType type))
        {
            switch (field)
            {
                case 1:
                    r.Expect(type, WireType.LengthDelimited);
                    var n = r.Message("NodeProto");
                    graph.Nodes.Add(ParseNode(ref n));
                    break;
                case 5:
                    r.Expect(type, WireType.LengthDelimited);
                    var t = r.Message("TensorProto");
                    graph.Initializers.Add(ParseTensor(ref t));
                    break;
                case 11 or 12:
                    r.Expect(type, WireType.LengthDelimited);
                    var v = r.Message("ValueInfoProto");
                    (field == 11 ? graph.Inputs : graph.Outputs).Add(ValueInfoName(ref v));
                    break;
                case 15: r.Skip(type); graph.SparseInitializers++; break;
                default: r.Skip(type); break;
            }
        }
        return graph;
    }

    private static string ValueInfoName(ref ProtoReader r)
    {
        string name = "";
        while (r.Next(out int field, out WireType type))
        {
            if (field == 1) { r.Expect(type, WireType.LengthDelimited); name = r.String(); }
            else r.Skip(type);
        }
        return name;
    }

    private static OnnxNode ParseNode(ref ProtoReader r)
    {
        var node = new OnnxNode();
        while (r.Next(out int field, out WireType type))
        {
            switch (field)
            {
                case 1: r.Expect(type, WireType.LengthDelimited); node.Inputs.Add(r.String()); break;
                case 2: r.Expect(type, WireType.LengthDelimited); node.Outputs.Add(r.String()); break;
                case 3: r.Expect(type, WireType.LengthDelimited); node.Name = r.String(); break;
                case 4: r.Expect(type, WireType.LengthDelimited); node.OpType = r.String(); break;
                case 5:
                    r.Expect(type, WireType.LengthDelimited);
                    var a = r.Message("AttributeProto");
                    node.Attributes.Add(ParseAttribute(ref a));
                    break;
                case 7: r.Expect(type, WireType.LengthDelimited); node.Domain = r.String(); break;
                default: r.Skip(type); break;
            }
        }
        return node;
    }

    private static OnnxAttribute ParseAttribute(ref ProtoReader r)
    {
        var attribute = new OnnxAttribute();
        while (r.Next(out int field, out WireType type))
        {
            switch (field)
            {
                case 1: r.Expect(type, WireType.LengthDelimited); attribute.Name = r.String(); break;
                case 2: r.Expect(type, WireType.Fixed32); attribute.Float = r.Float(); break;
                case 3: r.Expect(type, WireType.Varint); attribute.Int = r.Int64(); break;
                case 5:
                    r.Expect(type, WireType.LengthDelimited);
                    var t = r.Message("TensorProto");
                    attribute.Tensor = ParseTensor(ref t);
                    break;
                case 8: r.RepeatedVarint(type, attribute.Ints); break;
                default: r.Skip(type); break;
            }
        }
        return attribute;
    }

    private static OnnxTensor ParseTensor(ref ProtoReader r)
    {
        var tensor = new OnnxTensor();
        var dims = new List<long>();
        List<float>? floats = null;
        List<long>? int32s = null, int64s = null;
        var external = new Dictionary<string, string>(StringComparer.Ordinal);
        long location = 0;
        long start = r.Offset;
        while (r.Next(out int field, out WireType type))
        {
            switch (field)
            {
                case 1: r.RepeatedVarint(type, dims); break;
                case 2: r.Expect(type, WireType.Varint); tensor.DataType = (OnnxDataType)r.Int32(); break;
                case 4: r.RepeatedFloat(type, floats ??= []); break;
                case 5: r.RepeatedVarint(type, int32s ??= []); break;
                case 7: r.RepeatedVarint(type, int64s ??= []); break;
                case 8: r.Expect(type, WireType.LengthDelimited); tensor.Name = r.String(); break;
                case 9:
                    r.Expect(type, WireType.LengthDelimited);
                    tensor.RawLength = r.Bytes(out long offset).Length;
                    tensor.RawOffset = offset;
                    break;
                case 13:
                    r.Expect(type, WireType.LengthDelimited);
                    var kv = r.Message("StringStringEntryProto");
                    var (key, value) = ParseEntry(ref kv);
                    external[key] = value;
                    break;
                case 14: r.Expect(type, WireType.Varint); location = r.Int64(); break;
                default: r.Skip(type); break;
            }
        }
        tensor.Dims = [.. dims];
        tensor.FloatData = floats?.ToArray();
        tensor.Int32Data = int32s?.ToArray();
        tensor.Int64Data = int64s?.ToArray();
        if (tensor.Dims.Any(d => d < 0)) throw r.Error($"tensor '{tensor.Name}' has a negative dimension in {tensor.ShapeText}", start);
        // Bounded so that element counts times element sizes cannot overflow later.
        double elements = tensor.Dims.Aggregate(1.0, (a, d) => a * d);
        if (elements > long.MaxValue / 16) throw r.Error($"tensor '{tensor.Name}' {tensor.ShapeText} has more elements than any file holds", start);
        if (location == 1) tensor.External = ExternalOf(ref r, tensor, external, start);
        return tensor;
    }

    private static ExternalData ExternalOf(ref ProtoReader r, OnnxTensor tensor, Dictionary<string, string> entries, long at)
    {
        if (!entries.TryGetValue("location", out string? location) || location.Length == 0)
            throw r.Error($"tensor '{tensor.Name}' has data_location EXTERNAL but no external_data \"location\"", at);
        long offset = 0;
        long? length = null;
        foreach (string key in new[] { "offset", "length" })
        {
            if (!entries.TryGetValue(key, out string? text)) continue;
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value))
                throw r.Error($"tensor '{tensor.Name}': external_data \"{key}\" must be a non-negative integer, got \"{text}\"", at);
            if (key == "offset") offset = value;
            else length = value;
        }
        return new ExternalData(location, offset, length);
    }

    private static (string Key, string Value) ParseEntry(ref ProtoReader r)
    {
        string key = "", value = "";
        while (r.Next(out int field, out WireType type))
        {
            if (field == 1) { r.Expect(type, WireType.LengthDelimited); key = r.String(); }
            else if (field == 2) { r.Expect(type, WireType.LengthDelimited); value = r.String(); }
            else r.Skip(type);
        }
        return (key, value);
    }
}
