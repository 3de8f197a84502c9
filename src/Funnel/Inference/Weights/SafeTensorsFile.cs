using System.Buffers.Binary;
using System.Text.Json;

namespace Funnel.Inference.Weights;

/// <summary>One tensor's entry in a safetensors header. <see cref="DType"/> is the header's
/// spelling (e.g. "F32", "I64"); offsets are absolute file offsets.</summary>
internal sealed record TensorEntry(string Name, string DType, long[] Shape, long Offset, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// A memory-mapped <c>.safetensors</c> file: an 8-byte little-endian header length, a JSON header
/// of name → {dtype, shape, data_offsets}, then the raw little-endian data. Tensors are read
/// straight from the mapping, so the file is never copied into managed memory as a whole.
/// </summary>
internal sealed class SafeTensorsFile : IDisposable
{
    private const long MaxHeaderBytes = 100L << 20;
    private readonly MappedFile _file;

    public string Path => _file.Path;

    public IReadOnlyDictionary<string, TensorEntry> Tensors { get; }

    private SafeTensorsFile(MappedFile file)
    {
        _file = file;
        Tensors = ParseHeader();
    }

    public static SafeTensorsFile Open(string path)
    {
        MappedFile file = MappedFile.Open(path, "weight file");
        try
        {
            if (file.Length < 8) throw new ModelFormatException($"{path}: not a safetensors file ({file.Length} bytes, the 8-byte header length is missing)");
            return new SafeTensorsFile(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The raw bytes of a tensor, valid until this file is disposed.</summary>
    public ReadOnlySpan<byte> Bytes(TensorEntry e) => _file.Span(e.Offset, e.ByteLength);

    /// <summary>Converts a floating-point tensor to fp32 into <paramref name="destination"/>.</summary>
    public void ReadFloat32(TensorEntry e, Span<float> destination)
    {
        if (!TensorDTypes.TryParse(e.DType, out TensorDType dtype))
            throw new ModelFormatException($"{Path}: tensor '{e.Name}' has unsupported dtype {e.DType} (expected F32, F16 or BF16)");
        if (destination.Length != e.ElementCount)
            throw new ArgumentException($"destination holds {destination.Length} values, tensor '{e.Name}' has {e.ElementCount}", nameof(destination));
        TensorDTypes.ToFloat32(Bytes(e), dtype, destination);
    }

    private Dictionary<string, TensorEntry> ParseHeader()
    {
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(_file.Span(0, 8));
        if (headerLength > (ulong)Math.Min(MaxHeaderBytes, _file.Length - 8))
            throw new ModelFormatException($"{Path}: corrupt safetensors header: header length {headerLength} exceeds the file ({_file.Length} bytes)");
        long dataStart = 8 + (long)headerLength;
        var tensors = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(_file.Span(8, (long)headerLength).ToArray());
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException($"{Path}: corrupt safetensors header: expected a JSON object");
            foreach (JsonProperty p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__") continue;
                tensors[p.Name] = ParseEntry(p, dataStart);
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw new ModelFormatException($"{Path}: corrupt safetensors header: {ex.Message}", ex);
        }
        return tensors;
    }

    private TensorEntry ParseEntry(JsonProperty p, long dataStart)
    {
        JsonElement v = p.Value;
        if (v.ValueKind != JsonValueKind.Object
            || !v.TryGetProperty("dtype", out JsonElement dt) || dt.ValueKind != JsonValueKind.String
            || !v.TryGetProperty("shape", out JsonElement sh) || sh.ValueKind != JsonValueKind.Array
            || !v.TryGetProperty("data_offsets", out JsonElement off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new ModelFormatException($"{Path}: corrupt safetensors header: tensor '{p.Name}' needs dtype, shape and data_offsets [begin, end]");
        long[] shape = sh.EnumerateArray().Select(d => d.GetInt64()).ToArray();
        long begin = off[0].GetInt64(), end = off[1].GetInt64();
        var entry = new TensorEntry(p.Name, dt.GetString()!, shape, dataStart + begin, end - begin);
        if (begin < 0 || end < begin || dataStart + end > _file.Length)
            throw new ModelFormatException($"{Path}: corrupt safetensors header: tensor '{p.Name}' data_offsets [{begin}, {end}] lie outside the data ({_file.Length - dataStart} bytes)");
        if (shape.Any(d => d < 0))
            throw new ModelFormatException($"{Path}: corrupt safetensors header: tensor '{p.Name}' has a negative dimension in {entry.ShapeText}");
        if (TensorDTypes.TryParse(entry.DType, out TensorDType t) && entry.ElementCount * TensorDTypes.Size(t) != entry.ByteLength)
            throw new ModelFormatException($"{Path}: corrupt safetensors header: tensor '{p.Name}' {entry.DType} {entry.ShapeText} needs {entry.ElementCount * TensorDTypes.Size(t)} bytes, data_offsets give {entry.ByteLength}");
        return entry;
    }

    public void Dispose() => _file.Dispose();
}
