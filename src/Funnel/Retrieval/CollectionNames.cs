using System.Text.RegularExpressions;

namespace Funnel.Retrieval;

/// <summary>The names a folder of collections gives its collections (the service's routes, the VectorData store): safe as a
/// folder name and a URL segment on every system.</summary>
public static partial class CollectionNames
{
    public const string Rule = "use 1-64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit";

    public static bool IsValid(string name) => ValidName().IsMatch(name);

    // \z, not $: $ also matches before a final newline, which let "docs\n" through.
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\z")]
    private static partial Regex ValidName();
}
