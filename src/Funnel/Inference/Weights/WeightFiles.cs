namespace Funnel.Inference.Weights;

/// <summary>
/// The weights of a model folder: <c>model.safetensors</c>, or the shards listed by
/// <c>model.safetensors.index.json</c>. Looks tensors up by their checkpoint name with or without
/// the <c>bert.</c> prefix that task heads add.
/// </summary>
internal sealed class WeightFiles : IWeightSource
{
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = ShardIndex.FileName;

    private readonly List<SafeTensorsFile> _files;
    private readonly Dictionary<string, (SafeTensorsFile File, TensorEntry Entry)> _byName;

    /// <summary>The weight files in load order (shards sorted by name).</summary>
    public IReadOnlyList<string> Paths => _files.Select(f => f.Path).ToList();

    private WeightFiles(List<SafeTensorsFile> files)
    {
        _files = files;
        _byName = new(StringComparer.Ordinal);
        foreach (SafeTensorsFile f in files)
            foreach (TensorEntry e in f.Tensors.Values)
                _byName[e.Name] = (f, e);
    }

    public static WeightFiles Open(string modelDir)
    {
        string single = Path.Combine(modelDir, SingleFile), index = Path.Combine(modelDir, IndexFile);
        if (File.Exists(single)) return new WeightFiles([SafeTensorsFile.Open(single)]);
        if (!File.Exists(index)) throw ModelWeights.NoWeights(modelDir);
        var files = new List<SafeTensorsFile>();
        try
        {
            foreach (string shard in ShardIndex.ShardNames(index))
            {
                string path = Path.Combine(modelDir, shard);
                if (!File.Exists(path)) throw new ModelFormatException($"{index}: shard '{shard}' is listed but {path} does not exist");
                files.Add(SafeTensorsFile.Open(path));
            }
            return new WeightFiles(files);
        }
        catch
        {
            foreach (SafeTensorsFile f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Reads a tensor as fp32 into <paramref name="destination"/>, checking its shape and values.</summary>
    public void Read(string name, int[] shape, Span<float> destination)
    {
        if (!TryFind(name, out var hit))
            throw new ModelFormatException($"{string.Join(", ", Paths)}: missing tensor '{name}' (also looked for 'bert.{name}')");
        var (file, entry) = hit;
        if (!entry.Shape.SequenceEqual(shape.Select(d => (long)d)))
            throw new ModelFormatException($"{file.Path}: tensor '{entry.Name}' has shape {entry.ShapeText}, expected [{string.Join(", ", shape)}]");
        file.ReadFloat32(entry, destination);
        TensorDTypes.ThrowIfNotFinite(destination, file.Path, $"'{entry.Name}'");
    }

    public bool Contains(string name) => TryFind(name, out _);

    private bool TryFind(string name, out (SafeTensorsFile File, TensorEntry Entry) hit)
        => _byName.TryGetValue(name, out hit) || _byName.TryGetValue("bert." + name, out hit)
           || (name.StartsWith("bert.", StringComparison.Ordinal) && _byName.TryGetValue(name[5..], out hit));

    public void Dispose()
    {
        foreach (SafeTensorsFile f in _files) f.Dispose();
    }
}
