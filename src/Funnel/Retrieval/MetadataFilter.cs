namespace Funnel.Retrieval;

/// <summary>A conjunction of metadata equalities (<c>key=value</c>, ordinal): a document matches when it has every pair.</summary>
public sealed class MetadataFilter
{
    private readonly KeyValuePair<string, string>[] _pairs;

    public MetadataFilter(IEnumerable<KeyValuePair<string, string>> pairs) => _pairs = pairs.ToArray();

    public IReadOnlyList<KeyValuePair<string, string>> Pairs => _pairs;

    public bool Matches(IReadOnlyDictionary<string, string> metadata)
    {
        foreach (var (key, value) in _pairs)
            if (!metadata.TryGetValue(key, out string? actual) || !string.Equals(actual, value, StringComparison.Ordinal)) return false;
        return true;
    }

    /// <summary>Parses <c>key=value</c> terms (the value may contain '='); a term without '=' or with an empty key is an error naming it.</summary>
    public static MetadataFilter Parse(IEnumerable<string> terms) => new(terms.Select(term =>
    {
        int eq = term.IndexOf('=');
        if (eq <= 0) throw new FormatException($"filter '{term}' is not of the form key=value");
        return KeyValuePair.Create(term[..eq], term[(eq + 1)..]);
    }));

    public override string ToString() => string.Join(" AND ", _pairs.Select(p => $"{p.Key}={p.Value}"));
}
