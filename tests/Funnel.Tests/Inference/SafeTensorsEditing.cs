using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Funnel.Inference.Weights;

namespace Funnel.Tests.Inference;

/// <summary>Damages safetensors files in controlled ways for the loader and tolerance tests.</summary>
internal static class SafeTensorsEditing
{
    /// <summary>Adds <paramref name="delta"/> to one element of an F32 tensor, in place.</summary>
    public static void AddToElement(string path, string tensor, int index, float delta)
    {
        long offset;
        using (SafeTensorsFile file = SafeTensorsFile.Open(path)) offset = file.Tensors[tensor].Offset + 4L * index;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        byte[] buf = new byte[4];
        stream.Position = offset;
        stream.ReadExactly(buf);
        BinaryPrimitives.WriteSingleLittleEndian(buf, BinaryPrimitives.ReadSingleLittleEndian(buf) + delta);
        stream.Position = offset;
        stream.Write(buf);
    }

    /// <summary>Rewrites the JSON header (keeping the data bytes) through <paramref name="edit"/>.</summary>
    public static void EditHeader(string path, Action<JsonObject> edit)
    {
        byte[] bytes = File.ReadAllBytes(path);
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = (JsonObject)JsonNode.Parse(bytes.AsSpan(8, headerLength))!;
        edit(header);
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var stream = new FileStream(path, FileMode.Create);
        byte[] len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)json.Length);
        stream.Write(len);
        stream.Write(json);
        stream.Write(bytes.AsSpan(8 + headerLength));
    }
}
