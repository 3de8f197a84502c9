// The abstractions' provider services (record model, filter helpers) are what every VectorData provider builds on; they are
// marked experimental (MEVD9001) because their shape may still change between releases.
#pragma warning disable MEVD9001
using System.Linq.Expressions;
using Microsoft.Extensions.VectorData.ProviderServices;

namespace Funnel.Retrieval.VectorData;

/// <summary>
/// Translates a VectorData filter (<c>r =&gt; r.Category == "news" &amp;&amp; r.Year == 2024</c>) into Funnel's
/// <see cref="MetadataFilter"/>: a conjunction of equalities between a metadata property and a value. A bare boolean property
/// means <c>== true</c> and its negation <c>== false</c>; captured variables are read when the filter is translated. Any other
/// node (or, not-equal, comparisons, method calls, the text or key property) throws <see cref="NotSupportedException"/>
/// naming it, since applying it after the search would silently return fewer results than asked for.
/// </summary>
internal static class FilterTranslation
{
    private const string What = "Funnel filters are conjunctions (&&) of equalities between a data property and a value";

    public static MetadataFilter? Translate(LambdaExpression? filter, RecordMapping mapping)
    {
        if (filter is null) return null;
        var pairs = new List<KeyValuePair<string, string>>();
        Visit(filter.Body, filter.Parameters[0], mapping, pairs);
        return pairs.Count == 0 ? null : new MetadataFilter(pairs);
    }

    private static void Visit(Expression node, ParameterExpression record, RecordMapping mapping, List<KeyValuePair<string, string>> pairs)
    {
        switch (node)
        {
            case BinaryExpression { NodeType: ExpressionType.AndAlso } and:
                Visit(and.Left, record, mapping, pairs);
                Visit(and.Right, record, mapping, pairs);
                return;
            case BinaryExpression { NodeType: ExpressionType.Equal } equal:
                if (Property(equal.Left, record, mapping) is { } left && !Uses(equal.Right, record))
                    pairs.Add(Pair(left, Evaluate(equal.Right)));
                else if (Property(equal.Right, record, mapping) is { } right && !Uses(equal.Left, record))
                    pairs.Add(Pair(right, Evaluate(equal.Left)));
                else throw Unsupported(node);
                return;
            case UnaryExpression { NodeType: ExpressionType.Not } not when Property(not.Operand, record, mapping) is { } negated && IsBool(negated):
                pairs.Add(Pair(negated, false));
                return;
            case ConstantExpression { Value: true }:
                return;
            default:
                if (node.Type == typeof(bool) && Property(node, record, mapping) is { } flag && IsBool(flag))
                {
                    pairs.Add(Pair(flag, true));
                    return;
                }
                throw Unsupported(node);
        }
    }

    /// <summary>The metadata property <paramref name="node"/> reads (through conversions), or null when it reads none.</summary>
    private static DataPropertyModel? Property(Expression node, ParameterExpression record, RecordMapping mapping)
    {
        while (node is UnaryExpression { NodeType: ExpressionType.Convert or ExpressionType.ConvertChecked } convert) node = convert.Operand;
        string? name = node switch
        {
            MemberExpression member when member.Expression == record => member.Member.Name,
            // A dynamic record: r["Category"].
            MethodCallExpression { Method.Name: "get_Item", Arguments: [ConstantExpression { Value: string key }] } call when call.Object == record => key,
            _ => null,
        };
        if (name is null) return null;
        if (mapping.Metadata.FirstOrDefault(p => p.ModelName == name) is { } property) return property;
        string role = name == mapping.Key.ModelName ? "the key" : name == mapping.Text?.ModelName ? "the full-text property" : name == mapping.Vector.ModelName ? "the vector" : "not a data property";
        throw new NotSupportedException($"filter node '{node}': '{name}' is {role}; {What}");
    }

    private static KeyValuePair<string, string> Pair(DataPropertyModel property, object? value)
    {
        if (value is null)
            throw new NotSupportedException($"filter on '{property.ModelName}' == null: Funnel stores no metadata for null values and cannot filter on their absence");
        return KeyValuePair.Create(property.StorageName, RecordMapping.MetadataValue(value, property.Type));
    }

    private static bool IsBool(DataPropertyModel property) => (Nullable.GetUnderlyingType(property.Type) ?? property.Type) == typeof(bool);

    private static object? Evaluate(Expression value) =>
        value is ConstantExpression constant ? constant.Value : Expression.Lambda<Func<object?>>(Expression.Convert(value, typeof(object))).Compile()();

    private static bool Uses(Expression node, ParameterExpression record)
    {
        var finder = new ParameterFinder(record);
        finder.Visit(node);
        return finder.Found;
    }

    private static NotSupportedException Unsupported(Expression node) =>
        new($"Funnel cannot translate the filter node '{node}' ({node.NodeType}): {What}");

    private sealed class ParameterFinder(ParameterExpression parameter) : ExpressionVisitor
    {
        public bool Found { get; private set; }

        protected override Expression VisitParameter(ParameterExpression node)
        {
            Found |= node == parameter;
            return node;
        }
    }
}
