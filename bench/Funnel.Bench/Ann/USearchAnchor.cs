using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using Cloud.Unum.USearch;

namespace Funnel.Bench.Ann;

/// <summary>
/// USearch (Cloud.Unum.USearch 2.26.6) on the same vectors as Funnel's HNSW: the same M (connectivity) and efConstruction
/// (expansion_add), the same threads, f32 against Funnel's float index and i8 against its int8 one. The managed wrapper
/// fixes efSearch at construction and reports no memory, so the sweep calls two functions of the C API the package ships
/// (<c>usearch_change_expansion_search</c>, <c>usearch_memory_usage</c>) on the wrapper's own native handle.
/// </summary>
internal sealed class USearchAnchor : IDisposable
{
    private const string Library = "libusearch_c";
    private readonly USearchIndex _index;
    private readonly IntPtr _handle;

    public USearchAnchor(int dimension, bool int8, int m, int efConstruction)
    {
        // Inner product on f32, as Funnel's index scores the unit vectors; i8 takes cosine, the metric USearch's i8 scaling is made for.
        _index = new USearchIndex(int8 ? MetricKind.Cos : MetricKind.Ip, int8 ? ScalarKind.Int8 : ScalarKind.Float32, (ulong)dimension,
            connectivity: (ulong)m, expansionAdd: (ulong)efConstruction, expansionSearch: 64);
        _handle = (IntPtr)(typeof(USearchIndex).GetField("_index", BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue(_index)
            ?? throw new InvalidOperationException("Cloud.Unum.USearch changed: USearchIndex has no _index handle field"));
    }

    /// <summary>The SIMD back end USearch picked for this metric and scalar (numkong's name for it).</summary>
    public string Acceleration
    {
        get
        {
            IntPtr name = usearch_hardware_acceleration(_handle, out IntPtr error);
            ThrowIfFailed(error);
            return Marshal.PtrToStringAnsi(name) ?? "unknown";
        }
    }

    public string Version => typeof(USearchIndex).Assembly.GetName().Version?.ToString() ?? "?";

    /// <summary>Adds every point with its ordinal as key, <paramref name="threads"/> at a time, into capacity reserved up front
    /// (concurrent adds are safe in USearch once nothing has to grow).</summary>
    public double Build(float[][] points, int threads)
    {
        usearch_reserve(_handle, (nuint)points.Length, out IntPtr error);
        ThrowIfFailed(error);
        var clock = Stopwatch.StartNew();
        Parallel.For(0, points.Length, new ParallelOptions { MaxDegreeOfParallelism = threads }, i => _index.Add((ulong)i, points[i]));
        return clock.Elapsed.TotalSeconds;
    }

    public int EfSearch
    {
        set
        {
            usearch_change_expansion_search(_handle, (nuint)value, out IntPtr error);
            ThrowIfFailed(error);
        }
    }

    public double BytesPerVector(int count)
    {
        nuint bytes = usearch_memory_usage(_handle, out IntPtr error);
        ThrowIfFailed(error);
        return bytes / (double)count;
    }

    public long[] Search(float[] query, int k)
    {
        int found = _index.Search(query, k, out ulong[] keys, out _);
        var ids = new long[found];
        for (int i = 0; i < found; i++) ids[i] = (long)keys[i];
        return ids;
    }

    public void Dispose() => _index.Dispose();

    private static void ThrowIfFailed(IntPtr error)
    {
        if (error != IntPtr.Zero) throw new InvalidOperationException($"USearch: {Marshal.PtrToStringAnsi(error)}");
    }

    [DllImport(Library)] private static extern void usearch_reserve(IntPtr index, nuint capacity, out IntPtr error);
    [DllImport(Library)] private static extern void usearch_change_expansion_search(IntPtr index, nuint expansion, out IntPtr error);
    [DllImport(Library)] private static extern nuint usearch_memory_usage(IntPtr index, out IntPtr error);
    [DllImport(Library)] private static extern IntPtr usearch_hardware_acceleration(IntPtr index, out IntPtr error);
}
