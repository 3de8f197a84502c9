namespace Funnel.Bench;

/// <summary>The <c>--name value</c> options every suite reads.</summary>
internal static class BenchArgs
{
    /// <summary>The value after <paramref name="name"/>, or <paramref name="fallback"/> when it is absent.</summary>
    public static string Get(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
