// The abstractions' provider services (record model, filter helpers) are what every VectorData provider builds on; they are
// marked experimental (MEVD9001) because their shape may still change between releases.
#pragma warning disable MEVD9001
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using Microsoft.Extensions.VectorData.ProviderServices;

namespace Funnel.Retrieval.VectorData;

/// <summary>
/// How a VectorData record maps onto a Funnel <see cref="Document"/>. A Funnel document has one text, which the collection
/// chunks, embeds and indexes for BM25: the record's full-text-indexed string data property and/or its string vector property
/// (the text the vector is generated from). Every other data property is metadata (a string as it is, anything else as its
/// JSON, Funnel's one rule for metadata values), which filters match exactly. A vector given as numbers is stored as the
/// record's single chunk.
/// </summary>
internal sealed class RecordMapping
{
    private static readonly Type[] VectorTypes = [typeof(ReadOnlyMemory<float>), typeof(ReadOnlyMemory<float>?), typeof(float[]), typeof(Embedding<float>)];
    private const string VectorTypeNames = "ReadOnlyMemory<float>, float[] or Embedding<float> (or string: the text to embed)";

    private RecordMapping(CollectionModel model)
    {
        Model = model;
        Key = model.KeyProperty;
        Vector = model.VectorProperty;
        var fullText = model.DataProperties.Where(p => p.IsFullTextIndexed).ToList();
        if (fullText.Count > 1)
            throw new NotSupportedException(
                $"a Funnel record has one full-text-indexed text; {string.Join(" and ", fullText.Select(p => $"'{p.ModelName}'"))} are both marked IsFullTextIndexed");
        Text = fullText.SingleOrDefault();
        if (Text is not null && Text.Type != typeof(string))
            throw new NotSupportedException($"full-text property '{Text.ModelName}' is a {Text.Type.Name}; full-text search needs a string");
        Metadata = [.. model.DataProperties.Where(p => !ReferenceEquals(p, Text))];
    }

    public CollectionModel Model { get; }
    public KeyPropertyModel Key { get; }
    public VectorPropertyModel Vector { get; }

    /// <summary>The full-text-indexed data property (null: the text is the vector property's string, or there is none).</summary>
    public DataPropertyModel? Text { get; }

    public IReadOnlyList<DataPropertyModel> Metadata { get; }

    /// <summary>The vector is generated from the record's text by the collection's bi-encoder (a string vector property).</summary>
    public bool EmbedsText => Vector.Type == typeof(string);

    public static RecordMapping For<TKey, TRecord>(VectorStoreCollectionDefinition? definition, IEmbeddingGenerator generator, bool dynamic)
    {
        var builder = new ModelBuilder();
        CollectionModel model = dynamic
            ? builder.BuildDynamic(definition ?? throw new ArgumentException("a dynamic collection needs a record definition", nameof(definition)), generator)
            : builder.Build(typeof(TRecord), typeof(TKey), definition, generator);
        return new RecordMapping(model);
    }

    /// <summary>A record's key as a document id (Funnel ids are strings).</summary>
    public static string Id(object? key) => key switch
    {
        string s when s.Length > 0 => s,
        string => throw new ArgumentException("a record key is empty; Funnel document ids need at least one character"),
        Guid g => g.ToString("D"),
        null => throw new ArgumentNullException(nameof(key), "a record has no key"),
        _ => throw new NotSupportedException($"a key of type {key.GetType().Name}: Funnel keys are string or Guid"),
    };

    /// <summary>
    /// The document a record is stored as, and its vector when the record carries one (null: embed the text). Throws naming the
    /// record and property when the record cannot be stored.
    /// </summary>
    public (Document Document, float[]? Vector) ToDocument(object record)
    {
        string id = Id(Key.GetValueAsObject(record));
        string? text = Text is null ? null : (string?)Text.GetValueAsObject(record);
        float[]? vector = null;
        object? vectorValue = Vector.GetValueAsObject(record);
        if (EmbedsText)
        {
            var source = (string?)vectorValue;
            if (text is not null && source is not null && !string.Equals(text, source, StringComparison.Ordinal))
                throw new ArgumentException(
                    $"record '{id}': Funnel embeds and keyword-indexes one text, but full-text property '{Text!.ModelName}' and vector property '{Vector.ModelName}' differ");
            text ??= source;
            if (text is null) throw new ArgumentException($"record '{id}': vector property '{Vector.ModelName}' holds no text to embed");
        }
        else
        {
            vector = vectorValue switch
            {
                ReadOnlyMemory<float> m => m.ToArray(),
                float[] a => (float[])a.Clone(),
                Embedding<float> e => e.Vector.ToArray(),
                _ => throw new ArgumentException($"record '{id}': vector property '{Vector.ModelName}' is empty; give a vector or make it a string to embed"),
            };
            if (vector.Length != Vector.Dimensions)
                throw new ArgumentException($"record '{id}': vector property '{Vector.ModelName}' has {vector.Length} dimensions, its definition {Vector.Dimensions}");
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DataPropertyModel property in Metadata)
            if (property.GetValueAsObject(record) is { } value) metadata[property.StorageName] = MetadataValue(value, property.Type);
        return (new Document(id, "", text ?? "", metadata), vector);
    }

    /// <summary>A stored document as a record (vectors are not read back: see <see cref="FunnelVectorStoreCollection{TKey, TRecord}"/>).</summary>
    public TRecord ToRecord<TRecord>(Document document)
    {
        TRecord record = Model.CreateRecord<TRecord>();
        Key.SetValueAsObject(record!, Key.Type == typeof(Guid) || Nullable.GetUnderlyingType(Key.Type) == typeof(Guid) ? Guid.Parse(document.Id) : document.Id);
        Text?.SetValueAsObject(record!, document.Text);
        if (EmbedsText && (Vector.PropertyInfo is null || Vector.PropertyInfo.CanWrite)) Vector.SetValueAsObject(record!, document.Text);
        foreach (DataPropertyModel property in Metadata)
        {
            if (!document.Metadata.TryGetValue(property.StorageName, out string? value)) continue;
            property.SetValueAsObject(record!, ReadMetadata(value, property, document.Id));
        }
        return record;
    }

    /// <summary>A value as metadata text: a string as it is, anything else as JSON (what a filter on it must match).</summary>
    public static string MetadataValue(object value, Type type) =>
        value as string ?? JsonSerializer.Serialize(value, Nullable.GetUnderlyingType(type) ?? type);

    private static object? ReadMetadata(string value, DataPropertyModel property, string id)
    {
        Type type = Nullable.GetUnderlyingType(property.Type) ?? property.Type;
        if (type == typeof(string)) return value;
        try
        {
            return JsonSerializer.Deserialize(value, type);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"document '{id}': metadata '{property.StorageName}' = {JsonSerializer.Serialize(value)} is not a {type.Name}", e);
        }
    }

    /// <summary>The abstractions' model builder with Funnel's rules: one vector, keys string or Guid (never generated).</summary>
    private sealed class ModelBuilder() : CollectionModelBuilder(new CollectionModelBuildingOptions { SupportsMultipleVectors = false, RequiresAtLeastOneVector = true })
    {
        protected override bool SupportsKeyAutoGeneration(Type keyPropertyType) => false;

        protected override void ValidateKeyProperty(KeyPropertyModel keyProperty)
        {
            base.ValidateKeyProperty(keyProperty);
            Type type = Nullable.GetUnderlyingType(keyProperty.Type) ?? keyProperty.Type;
            if (type != typeof(string) && type != typeof(Guid) && type != typeof(object))
                throw new NotSupportedException($"key property '{keyProperty.ModelName}' is a {keyProperty.Type.Name}; Funnel keys are string or Guid");
        }

        // Data values are stored as metadata text: strings as they are, anything System.Text.Json writes as JSON.
        protected override bool IsDataPropertyTypeValid(Type type, out string supportedTypes)
        {
            supportedTypes = "any type System.Text.Json can write and read";
            return true;
        }

        protected override bool IsVectorPropertyTypeValid(Type type, out string supportedTypes)
        {
            supportedTypes = VectorTypeNames;
            return Array.IndexOf(VectorTypes, type) >= 0;
        }
    }
}
