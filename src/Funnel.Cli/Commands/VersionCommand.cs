using System.CommandLine;
using System.Reflection;
using System.Runtime.Intrinsics.X86;

namespace Funnel.Cli.Commands;

/// <summary><c>funnel version</c>: the build and the SIMD the kernels will use on this CPU.</summary>
internal static class VersionCommand
{
    public static Command Create()
    {
        var command = new Command("version", "Print the version and this CPU's vector support.");
        command.SetAction(_ =>
        {
            string version = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            Console.WriteLine($"funnel {version}");
            Console.WriteLine($"cores: {Environment.ProcessorCount}, AVX2: {Avx2.IsSupported}, AVX-512F: {Avx512F.IsSupported}, AVX-VNNI: {AvxVnni.IsSupported}");
            return 0;
        });
        return command;
    }
}
