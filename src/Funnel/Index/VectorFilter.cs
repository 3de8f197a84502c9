namespace Funnel.Index;

/// <summary>
/// A predicate over a vector's id and metadata. Indexes apply it to results only (never to graph traversal),
/// so a selective filter does not disconnect the graph; see <see cref="HnswIndex"/> for how ef grows with it.
/// </summary>
public sealed class VectorFilter
{
    private readonly Func<long, IReadOnlyDictionary<string, string>?, bool> _predicate;

    private VectorFilter(Func<long, IReadOnlyDictionary<string, string>?, bool> predicate) => _predicate = predicate;

    /// <summary>True when the vector with this id and metadata may be returned.</summary>
    public bool Matches(long id, IReadOnlyDictionary<string, string>? metadata) => _predicate(id, metadata);

    /// <summary>Keeps the ids for which <paramref name="predicate"/> holds.</summary>
    public static VectorFilter Where(Func<long, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        return new((id, _) => predicate(id));
    }

    /// <summary>Keeps the vectors whose id and metadata (null when none was given) satisfy <paramref name="predicate"/>.</summary>
    public static VectorFilter Where(Func<long, IReadOnlyDictionary<string, string>?, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        return new(predicate);
    }

    /// <summary>Keeps exactly the given ids.</summary>
    public static VectorFilter IdIn(IEnumerable<long> ids)
    {
        var set = ids.ToHashSet();
        return new((id, _) => set.Contains(id));
    }

    /// <summary>Keeps the vectors whose metadata maps <paramref name="key"/> to <paramref name="value"/> (ordinal).</summary>
    public static VectorFilter MetadataEquals(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        return new((_, m) => m is not null && m.TryGetValue(key, out var v) && string.Equals(v, value, StringComparison.Ordinal));
    }

    /// <summary>Both filters hold.</summary>
    public VectorFilter And(VectorFilter other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new((id, m) => _predicate(id, m) && other._predicate(id, m));
    }

    /// <summary>Either filter holds.</summary>
    public VectorFilter Or(VectorFilter other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new((id, m) => _predicate(id, m) || other._predicate(id, m));
    }
}
