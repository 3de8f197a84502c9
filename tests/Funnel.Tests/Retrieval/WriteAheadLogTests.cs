using Funnel.Retrieval.Storage;

namespace Funnel.Tests.Retrieval;

public sealed class WriteAheadLogTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("funnel-wal-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string LogPath => Path.Combine(_dir, "wal.log");

    private static byte[] Payload(int i) => Enumerable.Range(0, 10 + i * 7).Select(b => (byte)(b * 31 + i)).ToArray();

    private List<(long Sequence, byte[] Payload)> ScanAll(out WalScan scan, long generation = 1)
    {
        var records = new List<(long, byte[])>();
        scan = WriteAheadLog.Scan(LogPath, generation, (seq, payload) => records.Add((seq, payload.ToArray())));
        return records;
    }

    private void WriteRecords(int count, long sequenceBase = 0)
    {
        using var log = WriteAheadLog.OpenForAppend(LogPath, 1, WriteAheadLog.Scan(LogPath, 1, (_, _) => { }), sequenceBase);
        for (int i = 0; i < count; i++) Assert.Equal(sequenceBase + i + 1, log.Append(Payload(i)));
    }

    [Fact]
    public void RecordsRoundTripWithConsecutiveSequenceNumbers()
    {
        WriteRecords(5, sequenceBase: 41);
        var records = ScanAll(out WalScan scan);
        Assert.Equal(Enumerable.Range(42, 5).Select(i => (long)i), records.Select(r => r.Sequence));
        for (int i = 0; i < 5; i++) Assert.Equal(Payload(i), records[i].Payload);
        Assert.Equal(new FileInfo(LogPath).Length, scan.ValidLength);
        Assert.Equal(0, scan.TornBytes);
    }

    [Fact]
    public void EveryTornTailIsDroppedAndTheNextWriterContinuesAfterTheLastWholeRecord()
    {
        WriteRecords(3);
        byte[] full = File.ReadAllBytes(LogPath);
        ScanAll(out WalScan whole);
        var afterTwo = new List<long>();
        // find where record 3 starts: scan a copy cut just before the end until 2 records remain
        for (int cut = full.Length - 1; cut >= 0; cut--)
        {
            File.WriteAllBytes(LogPath, full[..cut]);
            var records = ScanAll(out WalScan scan);
            Assert.True(records.Count <= 2, $"cut at {cut} still yields 3 records");
            Assert.Equal(cut, scan.ValidLength + scan.TornBytes);
            for (int i = 0; i < records.Count; i++) Assert.Equal(Payload(i), records[i].Payload);
            if (records.Count < 2) break;
            afterTwo.Add(cut);
        }
        Assert.NotEmpty(afterTwo);

        // Reopen after a torn append: the tail is cut, and appends go on from sequence 3.
        File.WriteAllBytes(LogPath, full[..(full.Length - 3)]);
        using (var log = WriteAheadLog.OpenForAppend(LogPath, 1, WriteAheadLog.Scan(LogPath, 1, (_, _) => { }), 0))
            Assert.Equal(3, log.Append([7, 7, 7]));
        var final = ScanAll(out WalScan end);
        Assert.Equal([1L, 2L, 3L], final.Select(r => r.Sequence));
        Assert.Equal([7, 7, 7], final[2].Payload);
        Assert.Equal(0, end.TornBytes);
        Assert.True(whole.ValidLength > end.ValidLength);
    }

    [Fact]
    public void AFlippedByteInTheLastRecordDropsIt()
    {
        WriteRecords(3);
        byte[] bytes = File.ReadAllBytes(LogPath);
        bytes[^6] ^= 0x40;
        File.WriteAllBytes(LogPath, bytes);
        Assert.Equal(2, ScanAll(out WalScan scan).Count);
        Assert.True(scan.TornBytes > 0);
    }

    [Fact]
    public void Defect2_AFlippedByteBeforeIntactRecordsIsCorruptionUnlessRecovering()
    {
        WriteRecords(3);
        long second = 24 + 12 + Payload(0).Length + 4, third = second + 12 + Payload(1).Length + 4;
        byte[] bytes = File.ReadAllBytes(LogPath);
        bytes[second + 13] ^= 0x01;
        File.WriteAllBytes(LogPath, bytes);

        var error = Assert.Throws<Funnel.Retrieval.CollectionCorruptException>(() => ScanAll(out _));
        Assert.Contains($"corrupt at byte {second}", error.Message);
        Assert.Equal(second, error.Offset);

        var damage = new List<WalDamage>();
        var records = new List<long>();
        WalScan scan = WriteAheadLog.Scan(LogPath, 1, (seq, _) => records.Add(seq), damage);
        Assert.Equal([1L, 3L], records);
        Assert.Equal([new WalDamage(second, third - second, 1)], damage);
        Assert.Equal(0, scan.TornBytes);
    }

    [Fact]
    public void AHeaderTornAtCreationCountsAsAnEmptyLog()
    {
        File.WriteAllBytes(LogPath, [(byte)'F', (byte)'N', (byte)'L']);
        Assert.Empty(ScanAll(out WalScan scan));
        Assert.Equal(3, scan.TornBytes);
        WriteRecords(1, sequenceBase: 9);
        Assert.Equal([10L], ScanAll(out _).Select(r => r.Sequence));
    }

    [Fact]
    public void RejectsAForeignFileAndAnotherGeneration()
    {
        WriteRecords(1);
        var wrongGeneration = Assert.Throws<InvalidDataException>(() => ScanAll(out _, generation: 2));
        Assert.Contains("generation 1", wrongGeneration.Message);
        File.WriteAllText(LogPath, "this is not a write-ahead log at all");
        var foreign = Assert.Throws<InvalidDataException>(() => ScanAll(out _));
        Assert.Contains(LogPath, foreign.Message);
        Assert.Contains("magic", foreign.Message);
    }

    [Fact]
    public void AMissingLogIsEmpty()
    {
        Assert.Empty(ScanAll(out WalScan scan));
        Assert.Equal(default, scan);
    }
}
