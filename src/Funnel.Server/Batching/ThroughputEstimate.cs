namespace Funnel.Server.Batching;

/// <summary>
/// A model's measured throughput in cost units (tokens) per second: an exponentially weighted moving average of its
/// batches (weight <see cref="Weight"/> for the newest), so it follows a change of load or machine within a few batches.
/// Unknown (null) until a batch has been measured. Thread-safe.
/// </summary>
internal sealed class ThroughputEstimate
{
    /// <summary>The newest batch's weight in the average.</summary>
    public const double Weight = 0.2;

    private readonly Lock _gate = new();
    private double _costPerSecond;
    private double _itemsPerSecond;
    private bool _measured;

    /// <summary>Folds in one batch that ran <paramref name="items"/> items of <paramref name="cost"/> in <paramref name="duration"/>.</summary>
    public void Observe(int items, int cost, TimeSpan duration)
    {
        if (duration <= TimeSpan.Zero || cost <= 0) return; // nothing measurable
        double seconds = duration.TotalSeconds;
        lock (_gate)
        {
            double weight = _measured ? Weight : 1;
            _costPerSecond = weight * (cost / seconds) + (1 - weight) * _costPerSecond;
            _itemsPerSecond = weight * (items / seconds) + (1 - weight) * _itemsPerSecond;
            _measured = true;
        }
    }

    /// <summary>Tokens (cost units) per second, or null before the first batch.</summary>
    public double? CostPerSecond
    {
        get { lock (_gate) return _measured ? _costPerSecond : null; }
    }

    /// <summary>Items per second, or null before the first batch.</summary>
    public double? ItemsPerSecond
    {
        get { lock (_gate) return _measured ? _itemsPerSecond : null; }
    }

    /// <summary>How long work of <paramref name="cost"/> takes at the measured rate (zero before the first batch).</summary>
    public TimeSpan TimeFor(long cost) => CostPerSecond is { } rate ? TimeSpan.FromSeconds(cost / rate) : TimeSpan.Zero;
}
