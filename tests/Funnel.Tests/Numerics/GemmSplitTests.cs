using Funnel.Numerics;

namespace Funnel.Tests.Numerics;

public class GemmSplitTests
{
    [Fact]
    public void Every_cell_of_the_product_belongs_to_exactly_one_item()
    {
        var random = new Random(11);
        for (int trial = 0; trial < 2_000; trial++)
        {
            int m = random.Next(0, 700), panels = random.Next(1, 60), threads = random.Next(1, 9);
            int tileRows = random.Next(1, 3) * 4, blockRows = tileRows * random.Next(1, 33);
            var split = GemmSplit.For(m, panels, threads, tileRows, blockRows);
            var owners = new int[m, panels];
            for (int item = 0; item < split.Items; item++)
            {
                var (rows, cols) = split.Item(item);
                Assert.True(rows.Start.Value < rows.End.Value && cols.Start.Value < cols.End.Value, $"trial {trial}: item {item} is empty");
                for (int i = rows.Start.Value; i < rows.End.Value; i++)
                    for (int p = cols.Start.Value; p < cols.End.Value; p++) owners[i, p]++;
            }
            foreach (int count in owners) Assert.Equal(1, count);
        }
    }

    [Fact]
    public void One_thread_takes_the_whole_product_as_one_item()
    {
        var split = GemmSplit.For(m: 300, panels: 12, maxThreads: 1, tileRows: 8, blockRows: 64);
        Assert.Equal(1, split.Items);
        Assert.Equal((0..300, 0..12), split.Item(0));
    }

    [Fact]
    public void Few_rows_are_split_by_weight_panels_so_each_panel_is_streamed_once()
    {
        // 32 query tokens on 2 threads: cut by rows, each thread would stream all the weights.
        var split = GemmSplit.For(m: 32, panels: 12, maxThreads: 2, tileRows: 8, blockRows: 64);
        Assert.False(split.ByRows);
        Assert.Equal(12, split.Items);
        Assert.Equal((0..32, 5..6), split.Item(5));
    }

    [Fact]
    public void Many_rows_are_split_by_row_blocks()
    {
        var split = GemmSplit.For(m: 1024, panels: 12, maxThreads: 2, tileRows: 8, blockRows: 64);
        Assert.True(split.ByRows);
        Assert.True(split.Items >= 2);
        Assert.Equal(0..12, split.Item(0).Panels);
    }
}
