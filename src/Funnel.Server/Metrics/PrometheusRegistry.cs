using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Funnel.Server.Metrics;

/// <summary>
/// A small registry of counters, gauges and histograms rendered in the Prometheus text exposition format
/// (version 0.0.4). Each metric family has fixed label names; a series is created on first use.
/// </summary>
internal sealed class PrometheusRegistry
{
    private readonly List<MetricFamily> _families = [];

    public Counter AddCounter(string name, string help, params string[] labelNames) => Add(new Counter(name, help, labelNames));

    public Histogram AddHistogram(string name, string help, double[] buckets, params string[] labelNames) =>
        Add(new Histogram(name, help, buckets, labelNames));

    public Gauge AddGauge(string name, string help, params string[] labelNames) => Add(new Gauge(name, help, labelNames));

    /// <summary>All metrics in the text exposition format.</summary>
    public string Render()
    {
        var text = new StringBuilder();
        MetricFamily[] families;
        lock (_families) families = [.. _families];
        foreach (MetricFamily family in families)
            family.Render(text);
        return text.ToString();
    }

    private T Add<T>(T family) where T : MetricFamily
    {
        lock (_families)
        {
            if (_families.Any(f => f.Name == family.Name)) throw new InvalidOperationException($"metric {family.Name} is already registered");
            _families.Add(family);
        }
        return family;
    }

    internal static string Format(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        _ when double.IsNaN(value) => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };
}

/// <summary>One metric name with its help text, type and label names.</summary>
internal abstract class MetricFamily
{
    private protected MetricFamily(string name, string help, string[] labelNames)
    {
        if (!IsValidName(name)) throw new ArgumentException($"invalid metric name '{name}'", nameof(name));
        foreach (string label in labelNames)
            if (!IsValidName(label) || label.StartsWith("__", StringComparison.Ordinal) || label == "le")
                throw new ArgumentException($"invalid label name '{label}'", nameof(labelNames));
        Name = name;
        Help = help;
        LabelNames = labelNames;
    }

    public string Name { get; }
    public string Help { get; }
    public IReadOnlyList<string> LabelNames { get; }
    private protected abstract string TypeName { get; }

    internal void Render(StringBuilder text)
    {
        text.Append("# HELP ").Append(Name).Append(' ').Append(Help.Replace("\\", "\\\\").Replace("\n", "\\n")).Append('\n');
        text.Append("# TYPE ").Append(Name).Append(' ').Append(TypeName).Append('\n');
        RenderSeries(text);
    }

    private protected abstract void RenderSeries(StringBuilder text);

    private protected LabelSet Labels(string[] values)
    {
        if (values.Length != LabelNames.Count)
            throw new ArgumentException($"{Name} takes {LabelNames.Count} label values, got {values.Length}", nameof(values));
        return new LabelSet(values);
    }

    /// <summary>Writes <c>{a="x",b="y"}</c> (with an optional extra label, e.g. <c>le</c>), or nothing when there are no labels.</summary>
    private protected void AppendLabels(StringBuilder text, LabelSet labels, string? extraName = null, string? extraValue = null)
    {
        if (LabelNames.Count == 0 && extraName is null) return;
        text.Append('{');
        for (int i = 0; i < LabelNames.Count; i++)
        {
            if (i > 0) text.Append(',');
            AppendLabel(text, LabelNames[i], labels.Values[i]);
        }
        if (extraName is not null)
        {
            if (LabelNames.Count > 0) text.Append(',');
            AppendLabel(text, extraName, extraValue!);
        }
        text.Append('}');
    }

    private static void AppendLabel(StringBuilder text, string name, string value)
    {
        text.Append(name).Append("=\"");
        foreach (char c in value)
        {
            switch (c)
            {
                case '\\': text.Append("\\\\"); break;
                case '"': text.Append("\\\""); break;
                case '\n': text.Append("\\n"); break;
                default: text.Append(c); break;
            }
        }
        text.Append('"');
    }

    private static bool IsValidName(string name) =>
        name.Length > 0 && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_' || c == ':');

    /// <summary>Label values of one series; equal by content so they key a dictionary.</summary>
    private protected sealed class LabelSet(string[] values) : IEquatable<LabelSet>
    {
        public string[] Values { get; } = values;

        public bool Equals(LabelSet? other) => other is not null && Values.AsSpan().SequenceEqual(other.Values);
        public override bool Equals(object? obj) => Equals(obj as LabelSet);

        public override int GetHashCode()
        {
            var hash = new HashCode();
            foreach (string v in Values) hash.Add(v);
            return hash.ToHashCode();
        }
    }
}

/// <summary>A monotonically increasing count per label set.</summary>
internal sealed class Counter : MetricFamily
{
    private readonly ConcurrentDictionary<LabelSet, Cell> _series = new();

    internal Counter(string name, string help, string[] labelNames) : base(name, help, labelNames) { }

    private protected override string TypeName => "counter";

    public void Increment(double amount = 1, params string[] labels)
    {
        if (amount < 0) throw new ArgumentOutOfRangeException(nameof(amount), amount, "a counter only goes up");
        _series.GetOrAdd(Labels(labels), static _ => new Cell()).Add(amount);
    }

    public double Value(params string[] labels) => _series.TryGetValue(Labels(labels), out Cell? cell) ? cell.Value : 0;

    private protected override void RenderSeries(StringBuilder text)
    {
        foreach (var (labels, cell) in _series.OrderBy(kv => string.Join('\0', kv.Key.Values), StringComparer.Ordinal))
        {
            text.Append(Name);
            AppendLabels(text, labels);
            text.Append(' ').Append(PrometheusRegistry.Format(cell.Value)).Append('\n');
        }
    }

    private sealed class Cell
    {
        private double _value;
        public double Value => Volatile.Read(ref _value);

        public void Add(double amount)
        {
            double seen = Volatile.Read(ref _value);
            while (true)
            {
                double actual = Interlocked.CompareExchange(ref _value, seen + amount, seen);
                if (actual.Equals(seen)) return;
                seen = actual;
            }
        }
    }
}

/// <summary>A value read at scrape time per label set.</summary>
internal sealed class Gauge : MetricFamily
{
    private readonly ConcurrentDictionary<LabelSet, Func<double>> _series = new();

    internal Gauge(string name, string help, string[] labelNames) : base(name, help, labelNames) { }

    private protected override string TypeName => "gauge";

    /// <summary>Reports <paramref name="read"/>() for these labels at every scrape.</summary>
    public void Track(Func<double> read, params string[] labels) => _series[Labels(labels)] = read;

    private protected override void RenderSeries(StringBuilder text)
    {
        foreach (var (labels, read) in _series.OrderBy(kv => string.Join('\0', kv.Key.Values), StringComparer.Ordinal))
        {
            text.Append(Name);
            AppendLabels(text, labels);
            text.Append(' ').Append(PrometheusRegistry.Format(read())).Append('\n');
        }
    }
}

/// <summary>Observations counted into cumulative buckets, with their sum and count, per label set.</summary>
internal sealed class Histogram : MetricFamily
{
    private readonly double[] _bounds;
    private readonly ConcurrentDictionary<LabelSet, Cell> _series = new();

    internal Histogram(string name, string help, double[] buckets, string[] labelNames) : base(name, help, labelNames)
    {
        if (buckets.Length == 0) throw new ArgumentException("a histogram needs at least one bucket", nameof(buckets));
        for (int i = 1; i < buckets.Length; i++)
            if (!(buckets[i] > buckets[i - 1])) throw new ArgumentException("buckets must increase strictly", nameof(buckets));
        _bounds = buckets;
    }

    private protected override string TypeName => "histogram";

    public void Observe(double value, params string[] labels) =>
        _series.GetOrAdd(Labels(labels), _ => new Cell(_bounds.Length)).Observe(_bounds, value);

    /// <summary>Observations so far for these labels, and how many were at most <paramref name="upperBound"/> (a bucket bound).</summary>
    public (long Count, long AtMost, double Sum) Snapshot(double upperBound, params string[] labels)
    {
        if (!_series.TryGetValue(Labels(labels), out Cell? cell)) return (0, 0, 0);
        lock (cell)
        {
            long atMost = 0;
            for (int i = 0; i < _bounds.Length && _bounds[i] <= upperBound; i++) atMost += cell.Buckets[i];
            return (cell.Count, atMost, cell.Sum);
        }
    }

    private protected override void RenderSeries(StringBuilder text)
    {
        foreach (var (labels, cell) in _series.OrderBy(kv => string.Join('\0', kv.Key.Values), StringComparer.Ordinal))
        {
            long[] buckets;
            long count;
            double sum;
            lock (cell)
            {
                buckets = (long[])cell.Buckets.Clone();
                count = cell.Count;
                sum = cell.Sum;
            }
            long cumulative = 0;
            for (int i = 0; i < _bounds.Length; i++)
            {
                cumulative += buckets[i];
                text.Append(Name).Append("_bucket");
                AppendLabels(text, labels, "le", PrometheusRegistry.Format(_bounds[i]));
                text.Append(' ').Append(cumulative).Append('\n');
            }
            text.Append(Name).Append("_bucket");
            AppendLabels(text, labels, "le", "+Inf");
            text.Append(' ').Append(count).Append('\n');
            text.Append(Name).Append("_sum");
            AppendLabels(text, labels);
            text.Append(' ').Append(PrometheusRegistry.Format(sum)).Append('\n');
            text.Append(Name).Append("_count");
            AppendLabels(text, labels);
            text.Append(' ').Append(count).Append('\n');
        }
    }

    private sealed class Cell(int bucketCount)
    {
        /// <summary>Per-bucket (not cumulative) counts; values above the last bound only count in <see cref="Count"/>.</summary>
        public long[] Buckets { get; } = new long[bucketCount];
        public long Count { get; private set; }
        public double Sum { get; private set; }

        public void Observe(double[] bounds, double value)
        {
            int bucket = Array.BinarySearch(bounds, value);
            if (bucket < 0) bucket = ~bucket; // first bound >= value
            lock (this)
            {
                if (bucket < bounds.Length) Buckets[bucket]++;
                Count++;
                Sum += value;
            }
        }
    }
}
