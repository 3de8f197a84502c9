using System.CommandLine;
using System.CommandLine.Parsing;

namespace Funnel.Cli;

/// <summary>
/// What is wrong with a command line, in words for the user: System.CommandLine's parse errors without .NET type names,
/// plus options it does not know. Those it would take as positional text (<c>rerank --tpo 1 a b</c> scored "--tpo" as a
/// document), so a positional value that begins with '-' must come after <c>--</c>.
/// </summary>
internal static class CommandLineErrors
{
    public static IReadOnlyList<string> Of(ParseResult parse)
    {
        var errors = new List<string>();
        foreach (Token token in UnknownOptions(parse))
        {
            string? suggestion = Nearest(token.Value, parse.CommandResult.Command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)));
            errors.Add($"unknown option '{token.Value}' for `{CommandPath(parse)}`{(suggestion is null ? "" : $" (did you mean {suggestion}?)")}; " +
                       $"a text that begins with '-' goes after `--`, as in `{CommandPath(parse)} … -- {token.Value}`");
        }
        foreach (ParseError error in parse.Errors)
            errors.Add(Describe(error));
        return errors;
    }

    public static string CommandPath(ParseResult parse)
    {
        var names = new Stack<string>();
        for (SymbolResult? result = parse.CommandResult; result is CommandResult command; result = command.Parent)
            names.Push(command.Command.Name);
        return string.Join(' ', names);
    }

    /// <summary>Positional values that look like options and came before any <c>--</c>.</summary>
    private static IEnumerable<Token> UnknownOptions(ParseResult parse)
    {
        var positional = parse.CommandResult.Children.OfType<ArgumentResult>().SelectMany(a => a.Tokens).ToList();
        foreach (Token token in parse.Tokens)
        {
            if (token.Type == TokenType.DoubleDash) yield break;
            if (token.Type == TokenType.Argument && token.Value.Length > 1 && token.Value[0] == '-' && positional.Any(p => ReferenceEquals(p, token)))
                yield return token;
        }
    }

    private static string Describe(ParseError error)
    {
        if (error.SymbolResult is OptionResult { Option: var option } && error.Message.StartsWith("Cannot parse argument", StringComparison.Ordinal))
        {
            string value = string.Join(' ', ((OptionResult)error.SymbolResult).Tokens.Select(t => t.Value));
            return $"{option.Name}: '{value}' is not {Expected(option.ValueType)}";
        }
        if (error.SymbolResult is ArgumentResult { Argument: var argument } && error.Message.StartsWith("Cannot parse argument", StringComparison.Ordinal))
            return $"<{argument.Name}>: '{string.Join(' ', error.SymbolResult.Tokens.Select(t => t.Value))}' is not {Expected(argument.ValueType)}";
        return error.Message;
    }

    private static string Expected(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsEnum) return $"one of {string.Join(", ", Enum.GetNames(type).Select(n => n.ToLowerInvariant()))}";
        return Type.GetTypeCode(type) switch
        {
            TypeCode.Int32 or TypeCode.Int64 or TypeCode.Int16 => "a whole number",
            TypeCode.Single or TypeCode.Double or TypeCode.Decimal => "a number",
            TypeCode.Boolean => "true or false",
            _ => "a valid value",
        };
    }

    /// <summary>The option name closest to a misspelling (edit distance at most 2), if any.</summary>
    private static string? Nearest(string typed, IEnumerable<string> names)
    {
        (string? Name, int Distance) best = (null, 3);
        foreach (string name in names.Distinct())
        {
            int distance = EditDistance(typed, name);
            if (distance < best.Distance) best = (name, distance);
        }
        return best.Name;
    }

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
