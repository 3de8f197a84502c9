using System.Globalization;
using Funnel.Cli.Commands;

namespace Funnel.Tests.Cli;

public class JsonOutputTests
{
    [Fact]
    public void Numbers_are_shortest_round_trip_and_non_finite_values_are_null()
    {
        float[] values = [0.1f, -2.5e-10f, float.NaN, float.PositiveInfinity, float.MinValue, -1.1754944e-38f, 0f, 1f / 3];
        Assert.Equal("[0.1,-2.5E-10,null,null,-3.4028235E+38,-1.1754944E-38,0,0.33333334]", Json.Array(values));
        Assert.Equal("[]", Json.Array([]));
    }

    [Fact]
    public void Every_float_read_back_from_the_lines_is_the_one_written()
    {
        var rng = new Random(3);
        float[][] rows = Enumerable.Range(0, 40).Select(r => Enumerable.Range(0, 384)
            .Select(_ => BitConverter.Int32BitsToSingle(rng.Next(int.MinValue, int.MaxValue))).Where(float.IsFinite).ToArray()).ToArray();
        string text = Json.Lines(rows, maxThreads: 2);
        string[] lines = text.Split(Environment.NewLine);
        Assert.Equal(rows.Length + 1, lines.Length);
        Assert.Equal("", lines[^1]);
        for (int r = 0; r < rows.Length; r++)
        {
            float[] read = lines[r].Trim('[', ']').Split(',').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(rows[r].Select(BitConverter.SingleToInt32Bits), read.Select(BitConverter.SingleToInt32Bits));
        }
    }
}
