using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Funnel.IO;

namespace Funnel.Training.Checkpoints;

/// <summary>One float32 tensor to write: its name, shape and values in row-major order.</summary>
internal readonly record struct NamedTensor(string Name, int[] Shape, ReadOnlyMemory<float> Values);

/// <summary>
/// Writes float32 tensors as a safetensors file (8-byte header length, JSON header in tensor order, data padded to
/// an 8-byte boundary), through a fsynced temp file renamed into place.
/// </summary>
internal static class SafeTensorsWriter
{
    public static void Write(string path, IReadOnlyList<NamedTensor> tensors)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors writing assumes a little-endian machine");
        var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            json.WriteString("format", "pt");
            json.WriteEndObject();
            long offset = 0;
            foreach (NamedTensor t in tensors)
            {
                long count = t.Shape.Aggregate(1L, (a, d) => a * d);
                if (count != t.Values.Length) throw new ArgumentException($"tensor '{t.Name}': {t.Values.Length} values for shape [{string.Join(", ", t.Shape)}]", nameof(tensors));
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", "F32");
                json.WriteStartArray("shape");
                foreach (int d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + 4 * count);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += 4 * count;
            }
            json.WriteEndObject();
        }
        int pad = (int)((8 - (8 + header.Length) % 8) % 8);
        DurableFile.WriteAtomic(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)(header.Length + pad));
            stream.Write(length);
            header.WriteTo(stream);
            stream.Write(Encoding.ASCII.GetBytes(new string(' ', pad)));
            foreach (NamedTensor t in tensors) stream.Write(MemoryMarshal.AsBytes(t.Values.Span));
        });
    }
}
