using System.Buffers.Binary;
using System.Text;

namespace Funnel.Inference.Weights.Onnx;

/// <summary>Protobuf wire types (groups, 3 and 4, are not used by ONNX and are refused).</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    Fixed32 = 5,
}

/// <summary>
/// Reads one protobuf message from a span of a file, field by field. Every read is bounds-checked; a
/// malformed message (truncated, a varint over 10 bytes, a length past the end, an unknown wire type)
/// throws a <see cref="ModelFormatException"/> naming the file, the message and field, and the byte offset.
/// </summary>
internal ref struct ProtoReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly long _fileOffset;
    private readonly string _path;
    private readonly string _message;
    private int _position;
    private int _field;

    /// <param name="data">The message's bytes.</param>
    /// <param name="fileOffset">Where <paramref name="data"/> starts in the file (for errors and for raw data ranges).</param>
    /// <param name="path">The file, for errors.</param>
    /// <param name="message">The message's type, for errors (e.g. "TensorProto").</param>
    public ProtoReader(ReadOnlySpan<byte> data, long fileOffset, string path, string message)
    {
        _data = data;
        _fileOffset = fileOffset;
        _path = path;
        _message = message;
    }

    /// <summary>The file offset of the next byte to read.</summary>
    public readonly long Offset => _fileOffset + _position;

    /// <summary>Moves to the next field; false at the end of the message.</summary>
    public bool Next(out int field, out WireType type)
    {
        _field = 0;
        if (_position == _data.Length)
        {
            field = 0;
            type = default;
            return false;
        }
        long start = Offset;
        ulong tag = Varint();
        type = (WireType)(tag & 7);
        if (tag >> 3 is 0 or > int.MaxValue >> 3) throw Error($"invalid field number {tag >> 3}", start);
        field = (int)(tag >> 3);
        if (type is not (WireType.Varint or WireType.Fixed64 or WireType.LengthDelimited or WireType.Fixed32))
            throw Error($"field {field} has wire type {(int)type}, which ONNX does not use", start);
        _field = field;
        return true;
    }

    public ulong Varint()
    {
        ulong value = 0;
        for (int shift = 0, i = 0; ; shift += 7, i++)
        {
            if (_position == _data.Length) throw Error("truncated varint", Offset);
            byte b = _data[_position++];
            if (i == 9 && b > 1) throw Error("varint overflows 64 bits", Offset - 10);
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
    }

    public long Int64() => (long)Varint();

    /// <summary>An int32 field (negative values are sign-extended 10-byte varints).</summary>
    public int Int32() => unchecked((int)Varint());

    public float Float() => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadInt32LittleEndian(Take(4)));

    /// <summary>A length-delimited field's bytes and their file offset.</summary>
    public ReadOnlySpan<byte> Bytes(out long fileOffset)
    {
        long start = Offset;
        ulong length = Varint();
        if (length > (ulong)(_data.Length - _position))
            throw Error($"length {length} runs past the end of the message ({_data.Length - _position} bytes left)", start);
        fileOffset = Offset;
        return Take((int)length);
    }

    public string String() => Encoding.UTF8.GetString(Bytes(out _));

    /// <summary>A nested message of type <paramref name="message"/>.</summary>
    public ProtoReader Message(string message)
    {
        ReadOnlySpan<byte> bytes = Bytes(out long offset);
        return new ProtoReader(bytes, offset, _path, message);
    }

    /// <summary>Skips the current field's value.</summary>
    public void Skip(WireType type)
    {
        switch (type)
        {
            case WireType.Varint: Varint(); break;
            case WireType.Fixed64: Take(8); break;
            case WireType.Fixed32: Take(4); break;
            default: Bytes(out _); break;
        }
    }

    /// <summary>Fails unless the current field has wire type <paramref name="expected"/>.</summary>
    public readonly void Expect(WireType actual, WireType expected)
    {
        if (actual != expected) throw Error($"field {_field} has wire type {actual}, expected {expected}", Offset);
    }

    /// <summary>Appends a repeated varint field's values: packed (one length-delimited run) or one value per occurrence.</summary>
    public void RepeatedVarint(WireType type, List<long> values)
    {
        if (type == WireType.Varint)
        {
            values.Add(Int64());
            return;
        }
        Expect(type, WireType.LengthDelimited);
        var packed = new ProtoReader(Bytes(out long offset), offset, _path, _message) { _field = _field };
        while (packed._position < packed._data.Length) values.Add(packed.Int64());
    }

    /// <summary>Appends a repeated float field's values: packed or one per occurrence.</summary>
    public void RepeatedFloat(WireType type, List<float> values)
    {
        if (type == WireType.Fixed32)
        {
            values.Add(Float());
            return;
        }
        Expect(type, WireType.LengthDelimited);
        ReadOnlySpan<byte> bytes = Bytes(out long offset);
        if (bytes.Length % 4 != 0) throw Error($"packed floats of {bytes.Length} bytes (not a multiple of 4)", offset);
        for (int i = 0; i < bytes.Length; i += 4) values.Add(BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadInt32LittleEndian(bytes[i..])));
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > _data.Length - _position) throw Error($"needs {count} bytes, {_data.Length - _position} left", Offset);
        ReadOnlySpan<byte> span = _data.Slice(_position, count);
        _position += count;
        return span;
    }

    /// <summary>An error about this message at file offset <paramref name="at"/>.</summary>
    public readonly ModelFormatException Error(string what, long at)
    {
        string field = _field == 0 ? "" : $" field {_field}";
        return new ModelFormatException($"{_path}: not a valid ONNX model: {_message}{field} at byte {at}: {what}");
    }
}
