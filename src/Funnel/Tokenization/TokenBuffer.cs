using System.Buffers;

namespace Funnel.Tokenization;

/// <summary>A growable, pooled list of tokens: id and [start, end) in the original text (UTF-16 units).</summary>
internal struct TokenBuffer : IDisposable
{
    private Token[] _items;

    public TokenBuffer(int capacity)
    {
        _items = ArrayPool<Token>.Shared.Rent(Math.Max(capacity, 16));
        Count = 0;
    }

    public int Count { get; set; }

    public readonly ReadOnlySpan<Token> Items => _items.AsSpan(0, Count);

    public void Add(int id, int start, int end, bool wordStart = true)
    {
        if (Count == _items.Length)
        {
            Token[] bigger = ArrayPool<Token>.Shared.Rent(_items.Length * 2);
            _items.AsSpan(0, Count).CopyTo(bigger);
            ArrayPool<Token>.Shared.Return(_items);
            _items = bigger;
        }
        _items[Count++] = new Token(id, start, end, wordStart);
    }

    public void Dispose()
    {
        ArrayPool<Token>.Shared.Return(_items);
        _items = [];
    }
}

/// <summary>A token; <paramref name="WordStart"/> is false for the continuation pieces of a word.</summary>
internal readonly record struct Token(int Id, int Start, int End, bool WordStart);
