using Funnel.Server.Metrics;

namespace Funnel.Tests.Server;

public class PrometheusRegistryTests
{
    [Fact]
    public void RendersTheTextExpositionFormat()
    {
        var registry = new PrometheusRegistry();
        Counter requests = registry.AddCounter("app_requests_total", "Requests.", "route", "status");
        Histogram latency = registry.AddHistogram("app_latency_seconds", "Latency.", [0.25, 1], "route");
        Gauge depth = registry.AddGauge("app_queue_depth", "Queue depth.");
        requests.Increment(1, "/a", "200");
        requests.Increment(2, "/a", "200");
        requests.Increment(1, "/b\"x\\y\n", "500");
        latency.Observe(0.125, "/a");
        latency.Observe(0.25, "/a"); // on a bound: counts in that bucket (le is inclusive)
        latency.Observe(0.5, "/a");
        latency.Observe(7, "/a");
        depth.Track(() => 4);

        const string expected = """
            # HELP app_requests_total Requests.
            # TYPE app_requests_total counter
            app_requests_total{route="/a",status="200"} 3
            app_requests_total{route="/b\"x\\y\n",status="500"} 1
            # HELP app_latency_seconds Latency.
            # TYPE app_latency_seconds histogram
            app_latency_seconds_bucket{route="/a",le="0.25"} 2
            app_latency_seconds_bucket{route="/a",le="1"} 3
            app_latency_seconds_bucket{route="/a",le="+Inf"} 4
            app_latency_seconds_sum{route="/a"} 7.875
            app_latency_seconds_count{route="/a"} 4
            # HELP app_queue_depth Queue depth.
            # TYPE app_queue_depth gauge
            app_queue_depth 4

            """;
        Assert.Equal(expected.ReplaceLineEndings("\n"), registry.Render());
    }

    [Fact]
    public void CountersAreExactUnderContention()
    {
        var registry = new PrometheusRegistry();
        Counter counter = registry.AddCounter("c_total", "C.", "k");
        Histogram histogram = registry.AddHistogram("h", "H.", [1, 2], "k");
        Parallel.For(0, 20_000, i =>
        {
            counter.Increment(1, "x");
            histogram.Observe(i % 3, "x");
        });
        Assert.Equal(20_000, counter.Value("x"));
        var (count, atMost1, sum) = histogram.Snapshot(1, "x");
        Assert.Equal(20_000, count);
        Assert.Equal(13_334, atMost1); // i % 3 ∈ {0, 1}: 6,667 + 6,667
        Assert.Equal(19_999, sum); // 6,666 twos + 6,667 ones
    }

    [Fact]
    public void RejectsInvalidNamesAndLabelCounts()
    {
        var registry = new PrometheusRegistry();
        Assert.Throws<ArgumentException>(() => registry.AddCounter("9bad", "x"));
        Assert.Throws<ArgumentException>(() => registry.AddCounter("ok_total", "x", "le"));
        Counter counter = registry.AddCounter("ok_total", "x", "a");
        Assert.Throws<InvalidOperationException>(() => registry.AddCounter("ok_total", "x"));
        Assert.Throws<ArgumentException>(() => counter.Increment(1, "a", "b"));
        Assert.Throws<ArgumentOutOfRangeException>(() => counter.Increment(-1, "a"));
    }
}
