using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Funnel.Tests.Server;

/// <summary>
/// Reads a <see cref="ServerMetrics"/>-style meter without a server, as exposition lines <see cref="Http.Metric"/> parses:
/// counters as their sum, gauges as their latest value, histograms as <c>_count</c> and <c>_sum</c> (labels in the order the
/// instruments give them, as the service's exporter writes them).
/// </summary>
internal sealed class MeterReadings : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, double> _totals = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, double> _latest = new(StringComparer.Ordinal);

    public MeterReadings(Meter meter)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, meter)) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>Every series now (gauges are read at this call).</summary>
    public string Render()
    {
        _latest.Clear();
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        foreach (var (series, value) in _totals.Concat(_latest)) text.Append(series).Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string labels = tags.Length == 0 ? "" : "{" + string.Join(",", tags.ToArray().Select(t => $"{t.Key}=\"{t.Value}\"")) + "}";
        switch (instrument)
        {
            case ObservableGauge<double>:
                _latest[instrument.Name + labels] = value;
                break;
            case Histogram<double>:
                _totals.AddOrUpdate(instrument.Name + "_count" + labels, 1, (_, n) => n + 1);
                _totals.AddOrUpdate(instrument.Name + "_sum" + labels, value, (_, s) => s + value);
                break;
            default:
                _totals.AddOrUpdate(instrument.Name + labels, value, (_, s) => s + value);
                break;
        }
    }
}
